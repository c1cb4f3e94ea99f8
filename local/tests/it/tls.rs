//! TLS to PostgreSQL against a server whose certificate comes from a throwaway CA
//! (`scripts/with-postgres.sh` makes both and names them in QUBIT_TEST_* variables).

use std::time::Duration;

use qubit_core::store::{Store, StoreSettings};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by scripts/with-postgres.sh"))
}

fn settings(ca_file: Option<String>) -> StoreSettings {
    StoreSettings {
        ca_file,
        timeout: Duration::from_secs(3),
        ..StoreSettings::new(var("QUBIT_TEST_TLS_DATABASE_URL"))
    }
}

#[tokio::test]
async fn sslmode_require_with_the_servers_ca_connects() {
    let store = Store::connect(&settings(Some(var("QUBIT_TEST_CA_FILE")))).expect("a pool");

    store.ping().await.expect("a verified TLS connection");
}

#[tokio::test]
async fn every_certificate_of_a_bundle_is_trusted() {
    let dir = std::env::temp_dir().join(format!("qubit-bundle-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let bundle = dir.join("bundle.pem");
    let wrong = std::fs::read_to_string(var("QUBIT_TEST_WRONG_CA_FILE")).expect("readable");
    let right = std::fs::read_to_string(var("QUBIT_TEST_CA_FILE")).expect("readable");
    // The right CA last: a loader that kept only the first certificate would fail.
    std::fs::write(&bundle, format!("{wrong}{right}")).expect("written");

    let store = Store::connect(&settings(Some(bundle.display().to_string()))).expect("a pool");

    store
        .ping()
        .await
        .expect("the second certificate of the bundle is trusted");
    std::fs::remove_dir_all(dir).expect("cleaned up");
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused_with_a_clear_error() {
    let store = Store::connect(&settings(Some(var("QUBIT_TEST_WRONG_CA_FILE")))).expect("a pool");

    let err = store.ping().await.expect_err("an unverifiable server");

    let text = err.to_string();
    assert!(err.is_unavailable(), "{text}");
    assert!(
        text.contains("certificate"),
        "the error does not say why: {text}"
    );
}

#[tokio::test]
async fn a_ca_file_that_is_missing_or_not_pem_stops_start_up() {
    let missing = Store::connect(&settings(Some("/nonexistent/ca.pem".to_owned())));
    assert!(missing.is_err_and(|err| err.to_string().contains("DATABASE_CA_FILE")));

    let dir = std::env::temp_dir().join(format!("qubit-notpem-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let not_pem = dir.join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").expect("written");
    let garbage = Store::connect(&settings(Some(not_pem.display().to_string())));
    assert!(garbage.is_err_and(|err| err.to_string().contains("DATABASE_CA_FILE")));
    std::fs::remove_dir_all(dir).expect("cleaned up");
}
