//! AWS adapters for Nambari: the DynamoDB implementation of the storage port.

pub mod dynamo;

pub use dynamo::{DynamoTable, client, create_table};
