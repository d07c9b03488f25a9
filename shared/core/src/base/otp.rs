//! One-time codes: drawn from the OS CSPRNG without modulo bias, stored only
//! as HMAC-SHA256(pepper, session id ‖ code), compared in constant time.

use std::fmt;

use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::base::crypto::{ct_eq, hmac_sha256, random_below};
use crate::base::error::{Error, Result};

/// A plaintext code. Its `Debug` is redacted; it is never logged or stored.
#[derive(Clone)]
pub struct OtpCode(SecretString);

impl OtpCode {
    /// A fresh random code of `len` digits (4–8).
    pub fn generate(len: u32) -> Result<Self> {
        if !(4..=8).contains(&len) {
            return Err(Error::internal("code length out of range"));
        }
        let n = random_below(10u32.pow(len))?;
        Ok(Self(SecretString::from(format!("{n:0width$}", width = len as usize))))
    }

    /// Parses a code typed by a user: exactly `len` ASCII digits.
    pub fn parse(s: &str, len: u32, field: &str) -> Result<Self> {
        if s.len() == len as usize && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(SecretString::from(s.to_owned())))
        } else {
            Err(Error::field(field, format!("must be exactly {len} digits")))
        }
    }

    /// A fixed code (configured test numbers).
    pub fn fixed(s: &str) -> Self {
        Self(SecretString::from(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(***)")
    }
}

/// The secret pepper for code hashes (from Secrets Manager in production).
#[derive(Clone)]
pub struct Pepper(SecretSlice<u8>);

impl Pepper {
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < 16 {
            return Err(Error::internal("the OTP pepper must be at least 16 bytes"));
        }
        Ok(Self(SecretSlice::from(bytes)))
    }

    /// The hex hash of `code` for the OTP session `session_id`.
    pub fn hash(&self, session_id: &str, code: &OtpCode) -> String {
        hex::encode(hmac_sha256(
            self.0.expose_secret(),
            &[session_id.as_bytes(), code.expose().as_bytes()],
        ))
    }

    /// A 256-bit key for `label`, derived from the pepper (HMAC-SHA256), so
    /// one secret keys several independent uses.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        hmac_sha256(self.0.expose_secret(), &[b"nambari-derive", label.as_bytes()])
    }

    /// HMAC-SHA256 of `value` under the pepper, hex: how API keys are
    /// stored (a table dump does not give a usable key, nor a way to test one).
    pub fn keyed_hash(&self, value: &str) -> String {
        hex::encode(hmac_sha256(
            self.0.expose_secret(),
            &[b"nambari-keyed", value.as_bytes()],
        ))
    }

    /// Whether `code` matches the stored hex hash, in constant time.
    pub fn verify(&self, session_id: &str, code: &OtpCode, stored_hex: &str) -> bool {
        let expected = self.hash(session_id, code);
        ct_eq(expected.as_bytes(), stored_hex.as_bytes())
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pepper() -> Pepper {
        Pepper::new(vec![7; 32]).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn generated_codes_have_the_asked_length_and_only_digits() {
        for len in 4..=8 {
            let c = OtpCode::generate(len)
                .map(|c| c.expose().to_owned())
                .unwrap_or_default();
            assert_eq!(c.len(), len as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn codes_are_spread_over_every_digit_position() {
        // 2,000 codes: each of the 10 digits appears in the first position
        // (expected 200 times each; far outside 100..300 means bias).
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            let c = OtpCode::generate(6).map(|c| c.expose().to_owned()).unwrap_or_default();
            counts[(c.as_bytes()[0] - b'0') as usize] += 1;
        }
        assert!(counts.iter().all(|n| (100..300).contains(n)), "{counts:?}");
    }

    #[test]
    fn hash_binds_code_and_session() {
        let p = pepper();
        let code = OtpCode::fixed("123456");
        let h = p.hash("s1", &code);
        assert!(p.verify("s1", &code, &h));
        assert!(!p.verify("s2", &code, &h));
        assert!(!p.verify("s1", &OtpCode::fixed("123457"), &h));
        assert!(!h.contains("123456"));
    }

    #[test]
    fn debug_output_hides_the_code() {
        assert_eq!(format!("{:?}", OtpCode::fixed("123456")), "OtpCode(***)");
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_six_digits(s in "\\PC{0,10}") {
            let ok = OtpCode::parse(&s, 6, "otp").is_ok();
            prop_assert_eq!(ok, s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
