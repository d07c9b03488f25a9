//! `GET /api/v1/users?phone_number=+…` (API key, scope `users:read`): the
//! user of an E.164 number; a malformed number is a 422 (no guessing from
//! national formats). Every lookup is logged with the key that asked.

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::fields::required;
use crate::base::phone::PhoneNumber;
use crate::model::records::UserObject;
use crate::services::apikeys::Integrator;
use crate::services::integrator::looked_up;
use crate::services::numbers::parse_e164;

pub const NEEDS: Needs = Needs {
    store: true,
    api_key_pepper: true,
    ..Needs::NOTHING
};

/// The request, checked: an E.164 number.
pub struct Request {
    pub phone: PhoneNumber,
}

impl Request {
    pub fn parse(app: &App, phone: Option<&str>) -> Result<Self> {
        let raw = required(phone, "phone_number")?;
        Ok(Self {
            phone: parse_e164(app, raw, "phone_number")?,
        })
    }
}

pub async fn run(app: &App, caller: &Integrator, req: Request) -> Result<UserObject> {
    let user = app.db.user_by_phone(req.phone.e164(), app.now()).await?;
    looked_up(caller, "phone", user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn a_national_number_is_a_422() {
        let t = testing::app();
        assert!(Request::parse(&t.app, Some("0745051250")).is_err());
        assert!(Request::parse(&t.app, Some("+255745051250")).is_ok());
    }
}
