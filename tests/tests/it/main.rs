//! Nambari's integration tests, as one test binary (one link, one moto_server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance_dynamo;
mod flow;
mod limits;
mod moto_harness;
