//! The store conformance suite on DynamoDB: a fresh table per case on this
//! binary's moto_server.

use nambari_tests::moto;

nambari_core::conformance_tests!(async { moto::fresh_table(moto::shared()).await });
