//! The moto harness itself: start, answer, report state, stop.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use nambari_core::model::table::Key;
use nambari_core::ports::table::Table;
use nambari_tests::moto::{self, Moto};

#[tokio::test]
async fn moto_starts_answers_and_stops_when_dropped() {
    let moto = Moto::start();
    assert_eq!(moto.endpoint, format!("http://127.0.0.1:{}", moto.port));
    let state = moto::sent_messages(&moto).await;
    assert!(state.is_object(), "data.json: {state}");

    let table = moto::fresh_table(&moto).await;
    assert!(table.get(&Key::new("a", "b")).await.unwrap().is_none());

    let port = moto.port;
    drop(moto);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "moto still listening on {port} after drop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn fresh_tables_are_distinct_and_creating_one_again_is_harmless() {
    let moto = moto::shared();
    let a = moto::fresh_table(moto).await;
    let b = moto::fresh_table(moto).await;
    assert_ne!(a.table_name(), b.table_name());
    // create_table is idempotent (ResourceInUse, TTL already on).
    nambari_aws::create_table(a.client(), a.table_name()).await.unwrap();
}
