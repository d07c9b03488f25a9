//! Nambari's integration tests, as one test binary (one link, one moto_server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod conformance_dynamo;
mod delivery;
mod deploy;
mod faults;
mod flow;
mod google;
mod hostile;
mod integrator;
mod limits;
mod log_hygiene;
mod moto_harness;
mod races;
mod secrets;
mod store_calls;
mod takeover;
mod token_attacks;
