//! Nambari's domain crate: identities, one-time codes, tokens, sessions and
//! the ports (store, sender, clock) the services use. No AWS and no HTTP here.

pub mod app;
pub mod auth;
pub mod channel;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod limits;
pub mod mask;
pub mod memory;
pub mod messages;
pub mod metrics;
pub mod otp;
pub mod phone;
pub mod repo;
pub mod secrets;
pub mod sender;
pub mod table;
pub mod text;
pub mod tokens;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;

pub use app::App;
pub use error::{Error, Result};
