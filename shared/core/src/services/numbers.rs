//! Phone numbers as this deployment reads them: its default region, its
//! test numbers and the countries it serves.

use crate::App;
use crate::base::error::{Error, Result};
use crate::base::phone::PhoneNumber;

/// Parses a phone number with the deployment's region and test numbers.
pub fn parse_phone(app: &App, s: &str, field: &str) -> Result<PhoneNumber> {
    PhoneNumber::parse_field(s, field, app.settings.default_region, |n| {
        app.settings.is_test_number(n)
    })
}

/// Parses an E.164 number only (no national formats, whatever
/// `DEFAULT_REGION` says): the integrator API's numbers.
pub fn parse_e164(app: &App, s: &str, field: &str) -> Result<PhoneNumber> {
    PhoneNumber::parse_field(s, field, None, |n| app.settings.is_test_number(n))
}

/// Whether the deployment serves numbers of this country (test numbers always).
pub fn country_served(app: &App, phone: &PhoneNumber) -> bool {
    app.settings.is_test_number(phone.e164()) || app.settings.limits.country_allowed(phone.country())
}

/// 422 when the deployment does not serve numbers of this country.
pub fn check_country(app: &App, phone: &PhoneNumber, field: &str) -> Result<()> {
    if country_served(app, phone) {
        Ok(())
    } else {
        Err(Error::field(field, "numbers of this country are not served"))
    }
}
