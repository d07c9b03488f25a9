//! `POST /api/v1/auth/otp/trigger`: the one-step flow's send (snake_case,
//! no checkToken). A code to the phone; any earlier one-step code for it
//! dies. Send limits, the failure budget and test numbers apply as in the
//! main flow; `MAX_ATTEMPTS` wrong codes end a session.

use serde::Serialize;

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;
use crate::base::fields::{AllFields, required};
use crate::base::ids::DeviceId;
use crate::base::mask::mask_phone;
use crate::base::phone::PhoneNumber;
use crate::base::values::optional_device_id;
use crate::ports::table::Tx;
use crate::services::numbers::{check_country, parse_phone};
use crate::services::otp_sessions::{NewOtp, Purpose, open_otp};

pub const NEEDS: Needs = Needs {
    store: true,
    otp_pepper: true,
    senders: true,
    ..Needs::NOTHING
};

/// Wrong codes that end a one-step session.
pub const MAX_ATTEMPTS: u32 = 5;

/// The request, checked.
pub struct Request {
    pub phone: PhoneNumber,
    pub device: Option<DeviceId>,
    pub locale: String,
    pub ip: Option<String>,
}

impl Request {
    pub fn parse(
        app: &App,
        phone: Option<&str>,
        device_id: Option<&str>,
        locale: String,
        ip: Option<String>,
    ) -> Result<Self> {
        let (phone, device) = (
            required(phone, "phone").and_then(|s| parse_phone(app, s, "phone")),
            optional_device_id(device_id),
        )
            .all()?;
        check_country(app, &phone, "phone")?;
        Ok(Self {
            phone,
            device,
            locale,
            ip,
        })
    }
}

/// What was sent.
#[derive(Debug, Serialize)]
pub struct Triggered {
    pub masked_phone: String,
    pub expires_in_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_otp: Option<String>,
}

pub async fn run(app: &App, req: Request) -> Result<Triggered> {
    let phone = req.phone;
    let device = req.device.map(|d| d.as_str().to_owned()).unwrap_or_default();
    let opened = open_otp(
        app,
        NewOtp {
            purpose: Purpose::OneStep,
            phone: phone.e164(),
            country: phone.country(),
            user_id: None,
            device_id: &device,
            channel: app.settings.primary_pipe().channel(),
            destination: phone.e164().to_owned(),
            locale: req.locale,
            ip: req.ip.as_deref(),
            max_attempts: Some(MAX_ATTEMPTS),
        },
        Tx::new(),
        Vec::new(),
    )
    .await?;
    Ok(Triggered {
        masked_phone: mask_phone(phone.e164()),
        expires_in_seconds: app.settings.otp_ttl,
        sandbox_otp: app.settings.sandbox.then(|| opened.code.expose().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_code_goes_to_the_phone_in_snake_case_fields() {
        let t = testing::app();
        let req = Request::parse(&t.app, Some("+255745051250"), None, "en".into(), None).unwrap();
        let out = run(&t.app, req).await.unwrap();
        assert_eq!(out.masked_phone, "••• ••• ••50");
        assert!(t.sender.last_code_to("+255745051250").is_some());
    }

    #[test]
    fn a_bad_device_id_is_named() {
        let t = testing::app();
        let long = "x".repeat(200);
        let e = Request::parse(&t.app, Some("+255745051250"), Some(&long), "en".into(), None).err();
        assert!(matches!(e, Some(crate::Error::Validation(m)) if m.contains_key("device_id")));
    }
}
