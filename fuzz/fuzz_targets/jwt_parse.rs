//! Any string as a token of every kind: refused (or, never in practice, a
//! valid token of the service's own key), never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nambari_core::base::tokens::{KeyRing, TokenKind};

fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let set = KeyRing::generate_set().unwrap_or_else(|_| std::process::abort());
        KeyRing::from_set(&set, "nambari", "nambari-apps").unwrap_or_else(|_| std::process::abort())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for kind in [
        TokenKind::Check,
        TokenKind::Temp,
        TokenKind::Onboarding,
        TokenKind::Access,
        TokenKind::Reset,
        TokenKind::DeviceVerification,
        TokenKind::StepUp,
        TokenKind::PinRecovery,
    ] {
        assert!(ring().verify::<serde_json::Value>(kind, s, 1_775_212_245).is_err());
    }
    let _ = nambari_core::flows::account::bearer(Some(s));
});
