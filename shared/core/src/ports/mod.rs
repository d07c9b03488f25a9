pub mod clock;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod events;
pub mod id_tokens;
pub mod memory;
pub mod messages;
pub mod metrics;
pub mod secrets;
pub mod sender;
pub mod table;
