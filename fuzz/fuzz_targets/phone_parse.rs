//! Any string as a phone number, with and without a default region: a
//! value or a 422, never a panic; what parses is E.164 and parses again to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nambari_core::base::phone::{PhoneNumber, Region};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for region in [None, Region::parse("IN").ok(), Region::parse("TZ").ok()] {
        if let Ok(p) = PhoneNumber::parse_field(s, "identifier", region, |_| false) {
            let e164 = p.e164().to_owned();
            assert!(e164.starts_with('+') && e164[1..].bytes().all(|b| b.is_ascii_digit()), "{e164}");
            let again = PhoneNumber::parse_field(&e164, "identifier", None, |_| false);
            assert_eq!(again.map(|a| a.e164().to_owned()).ok(), Some(e164));
        }
    }
});
