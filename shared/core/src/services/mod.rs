//! Steps two or more endpoints share (docs/DESIGN.md §11).

pub mod apikeys;
pub mod attempts;
pub mod credentials;
pub mod device_check;
pub mod events;
pub mod flow_tokens;
pub mod idempotency;
pub mod integrator;
pub mod invites;
pub mod limits;
pub mod numbers;
pub mod oauth;
pub mod otp_sessions;
pub mod principal;
pub mod profile;
pub mod secret_hash;
pub mod sessions;
pub mod tiers;
