//! Request parsing that never trusts the body: size limit (413), JSON
//! (400 `INVALID_JSON`), an object with string fields (422 naming each bad
//! field). Unknown fields are ignored.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use nambari_core::base::error::FieldErrors;
use nambari_core::{Error, Result};
use serde_json::{Map, Value};

/// Bodies over 16 KiB are refused.
pub const MAX_BODY: usize = 16 * 1024;

/// A parsed JSON object body.
#[derive(Debug, Default)]
pub struct Body(Map<String, Value>);

impl Body {
    /// Parses the request body as a JSON object.
    pub fn parse(req: &Request) -> Result<Self> {
        let bytes: &[u8] = req.body().as_ref();
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BODY {
            return Err(Error::PayloadTooLarge);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(Self(m)),
            Ok(_) => Err(Error::field("body", "must be a JSON object")),
            Err(_) => Err(Error::InvalidJson),
        }
    }

    /// The string fields `names`, in order (`None` when absent or null);
    /// a field of another type is a 422 naming it.
    pub fn strings<const N: usize>(&self, names: [&str; N]) -> Result<[Option<&str>; N]> {
        let mut out = [None; N];
        let mut bad = FieldErrors::new();
        for (slot, name) in out.iter_mut().zip(names) {
            match self.0.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => *slot = Some(s.as_str()),
                Some(_) => {
                    bad.insert(name.to_owned(), "must be a string".to_owned());
                }
            }
        }
        if bad.is_empty() {
            Ok(out)
        } else {
            Err(Error::Validation(bad))
        }
    }
}

impl Body {
    /// The raw value of field `name` (for lists and objects).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// The whole object (bodies parsed field by field in the domain).
    pub fn object(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// The access token of `Authorization: Bearer <token>`, if any.
pub fn bearer(req: &Request) -> Option<&str> {
    let header = req.headers().get(http::header::AUTHORIZATION)?.to_str().ok();
    nambari_core::services::principal::bearer(header)
}

/// The path parameter `name` (`/users/{id}`), as API Gateway passed it.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.path_parameters_ref()?.first(name)
}

/// The query-string parameter `name` (its first value).
pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref()?.first(name)
}

/// The language to write messages in, from `Accept-Language` (default `en`).
pub fn locale(req: &Request) -> String {
    req.headers()
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .map(|l| l.split('-').next().unwrap_or("").to_ascii_lowercase())
        .filter(|l| !l.is_empty() && l.len() <= 8 && l.bytes().all(|b| b.is_ascii_alphabetic()))
        .unwrap_or_else(|| "en".to_owned())
}

/// The client's IP as API Gateway saw it (`requestContext.http.sourceIp`).
pub fn client_ip(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The deviceToken a sign-in presents: the body's `deviceToken`, else the
/// web cookie.
pub fn device_token<'a>(req: &'a Request, from_body: Option<&'a str>) -> Option<&'a str> {
    from_body.or_else(|| cookie(req, crate::envelope::DEVICE_COOKIE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_json_is_invalid_json_and_non_objects_are_422() {
        assert!(matches!(Body::from_bytes(b"{nope"), Err(Error::InvalidJson)));
        assert!(matches!(Body::from_bytes(b"[1,2]"), Err(Error::Validation(_))));
        assert!(matches!(Body::from_bytes(&[0xff, 0xfe]), Err(Error::InvalidJson)));
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let big = vec![b' '; MAX_BODY + 1];
        assert!(matches!(Body::from_bytes(&big), Err(Error::PayloadTooLarge)));
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(Body::from_bytes(deep.as_bytes()).is_err());
    }

    #[test]
    fn fields_of_the_wrong_type_are_named() {
        let b = Body::from_bytes(br#"{"identifier": 5, "deviceId": "d", "extra": true}"#).unwrap();
        match b.strings(["identifier", "deviceId"]) {
            Err(Error::Validation(m)) => assert_eq!(m.keys().collect::<Vec<_>>(), ["identifier"]),
            other => panic!("{other:?}"),
        }
        let b = Body::from_bytes(br#"{"deviceId": "d", "extra": true}"#).unwrap();
        assert_eq!(b.strings(["identifier", "deviceId"]).unwrap(), [None, Some("d")]);
    }
}
