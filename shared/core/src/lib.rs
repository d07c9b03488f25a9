//! Nambari's domain crate: identities, one-time codes, tokens, sessions and
//! the ports (store, sender, clock) the services use. No AWS and no HTTP here.

pub mod account;
pub mod admin;
pub mod apikeys;
pub mod app;
pub mod attempts;
pub mod auth;
pub mod channel;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod integrator;
pub mod invites;
pub mod limits;
pub mod mask;
pub mod memory;
pub mod messages;
pub mod metrics;
pub mod oauth;
pub mod one_step;
pub mod otp;
pub mod password;
pub mod phone;
pub mod pin_recovery;
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
