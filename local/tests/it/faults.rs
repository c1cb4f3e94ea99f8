//! Database faults and shutdown: a stalled or refused database answers 503 within seconds and
//! the service recovers by itself; the runner exits cleanly on SIGTERM with its batch recorded.

use std::process::Stdio;
use std::time::{Duration, Instant};

use qubit_local::sink::Behaviour;
use serde_json::json;

use crate::common::{TestApp, TestSink, admin, database_name, eventually, settings};

#[tokio::test]
async fn a_stalled_query_answers_503_within_the_database_timeout() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[("DATABASE_TIMEOUT", "1s")])).await;
    app.create("under lock").await;

    // Another session holds the table: every read waits on it until statement_timeout.
    let (mut holder, connection) =
        tokio_postgres::connect(&app.database_url, tokio_postgres::NoTls)
            .await
            .expect("connects");
    tokio::spawn(connection);
    let lock = holder.transaction().await.expect("a transaction");
    lock.batch_execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("locks");

    let started = Instant::now();
    let (status, body) = app.get("/api/v1/messages?status=all").await;

    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    lock.rollback().await.expect("unlocks");
    let (status, _) = app.get("/api/v1/messages?status=all").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_api_answers_503_while_the_database_refuses_connections_and_recovers_after() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[])).await;
    let admin = admin().await;
    let name = database_name(&app.database_url);

    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .await
        .expect("the database is closed");

    let (status, body) = app
        .post(
            "/api/v1/messages",
            &json!({ "phone_number": "+905321234567", "content": "x" }),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let health = app
        .http
        .get(format!("{}/health", app.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status(), 503);
    assert_eq!(health.headers()["retry-after"], "5");
    let report = app.dispatcher.run_batch().await;
    assert!(report.is_err_and(|err| err.is_unavailable()));

    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .expect("the database is open again");

    let recovered = eventually(Duration::from_secs(5), || async {
        app.get("/health").await.0 == 200
    })
    .await;
    assert!(recovered, "the API did not recover by itself");
    app.create("after the outage").await;
}

#[tokio::test]
async fn sigterm_lets_the_batch_in_flight_finish_and_exits_zero() {
    let sink = TestSink::start().await;
    let database_url = crate::common::fresh_database().await;
    // Every request is held for 1.5 s, so the batch is in flight when SIGTERM comes.
    sink.sink.set_behaviour(Behaviour {
        slow_rate: 1.0,
        delay: Duration::from_millis(1500),
        ..Behaviour::default()
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("bound")
        .port();
    let mut runner = tokio::process::Command::new(env!("CARGO_BIN_EXE_qubit-local"))
        .env("DATABASE_URL", &database_url)
        .env("WEBHOOK_URL", sink.url.as_str())
        .env("WEBHOOK_AUTH_KEY", crate::common::AUTH_KEY)
        .env("WEBHOOK_TIMEOUT", "5s")
        .env("SERVER_PORT", port.to_string())
        .env("SCHEDULER_INTERVAL", "1h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the runner starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = eventually(Duration::from_secs(30), || async {
        http.get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "the runner did not come up");
    let created = http
        .post(format!("{base}/api/v1/messages"))
        .json(&json!({ "phone_number": "+905321234567", "content": "in flight" }))
        .send()
        .await
        .expect("created");
    let id = created.json::<serde_json::Value>().await.expect("JSON")["id"].clone();
    assert!(
        eventually(Duration::from_secs(5), || async {
            !sink.sink.received().is_empty()
        })
        .await,
        "the batch did not start"
    );

    let pid = nix::unistd::Pid::from_raw(runner.id().expect("running") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signalled");
    let status = tokio::time::timeout(Duration::from_secs(15), runner.wait())
        .await
        .expect("exits within the bound")
        .expect("an exit status");

    assert!(status.success(), "exit {status:?}");
    let (client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT attempts, lease_expires_at IS NULL AS released FROM messages WHERE id = $1::text::uuid",
            &[&id.as_str().expect("an id")],
        )
        .await
        .expect("the message");
    assert_eq!(
        row.get::<_, i32>("attempts"),
        1,
        "the attempt in flight was not recorded"
    );
    assert!(row.get::<_, bool>("released"));
}

#[tokio::test]
async fn a_half_sent_request_does_not_hold_up_shutdown() {
    use tokio::io::AsyncWriteExt;
    let sink = TestSink::start().await;
    let database_url = crate::common::fresh_database().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("bound")
        .port();
    let mut runner = tokio::process::Command::new(env!("CARGO_BIN_EXE_qubit-local"))
        .env("DATABASE_URL", &database_url)
        .env("WEBHOOK_URL", sink.url.as_str())
        .env("SERVER_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the runner starts");
    let http = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/health");
    let up = eventually(Duration::from_secs(30), || async {
        http.get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "the runner did not come up");

    // Headers promise a body that never comes.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    stalled
        .write_all(
            b"POST /api/v1/messages HTTP/1.1\r\nhost: qubit\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .expect("written");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pid = nix::unistd::Pid::from_raw(runner.id().expect("running") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signalled");
    let status = tokio::time::timeout(Duration::from_secs(20), runner.wait())
        .await
        .expect("exits within the grace period")
        .expect("an exit status");

    assert!(status.success(), "exit {status:?}");
    drop(stalled);
}
