//! Start-up: instances starting together on one fresh database migrate it once, safely.

use qubit_core::app::App;
use qubit_core::config::Config;
use secrecy::SecretString;

use crate::common::{TestSink, fresh_database, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_instances_starting_at_once_on_a_fresh_database_all_start() {
    let sink = TestSink::start().await;
    let database_url = fresh_database().await;
    let env = settings(&[]);
    let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid settings");

    let starts = (0..8).map(|_| {
        let config = config.clone();
        let url = SecretString::from(database_url.clone());
        let sink = sink.url.clone();
        tokio::spawn(async move { App::build(&config, url, sink).await.map(|_| ()) })
    });
    for started in futures::future::join_all(starts).await {
        started.expect("joined").expect("the instance started");
    }

    let (client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    let applied: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .expect("the history table exists")
        .get(0);
    assert_eq!(applied, 1, "the migration was applied more than once");
}
