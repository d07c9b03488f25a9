//! Nambari's domain crate: identities, one-time codes, tokens, sessions and
//! the ports (store, sender, clock) the services use. No AWS and no HTTP here.
//!
//! Layers, each importing only the ones above it in this list:
//! `base` (errors, ids, crypto, value types, settings), `model` (records and
//! the table layout), `ports` (the store, senders, events, clock, secrets),
//! `app` (the dependencies of a process), `services` (steps two or more
//! endpoints share) and `flows` (one module per endpoint).

pub mod base;
pub mod model;
pub mod ports;

pub mod app;

pub mod services;

pub mod flows;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use app::App;
pub use base::error::{Error, Result};
