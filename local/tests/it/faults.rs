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

/// The `qubit-local` binary on a database and a receiver, killed if the test ends first.
struct Runner {
    child: tokio::process::Child,
    port: u16,
    http: reqwest::Client,
}

impl Runner {
    async fn start(database_url: &str, sink: &reqwest::Url) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a port")
            .local_addr()
            .expect("bound")
            .port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_qubit-local"))
            .env("DATABASE_URL", database_url)
            .env("WEBHOOK_URL", sink.as_str())
            .env("WEBHOOK_AUTH_KEY", crate::common::AUTH_KEY)
            .env("WEBHOOK_TIMEOUT", "5s")
            .env("SERVER_PORT", port.to_string())
            .env("SCHEDULER_INTERVAL", "1h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the runner starts");
        let runner = Self {
            child,
            port,
            http: reqwest::Client::new(),
        };
        let up = eventually(Duration::from_secs(30), || async {
            let health = runner.http.get(runner.url("/health")).send().await;
            health.is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(up, "the runner did not come up");
        runner
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends SIGTERM and waits for the exit, failing the test past `within`.
    async fn terminate(mut self, within: Duration) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id().expect("running") as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signalled");
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("exits in time")
            .expect("an exit status")
    }
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
    let runner = Runner::start(&database_url, &sink.url).await;
    let created = runner
        .http
        .post(runner.url("/api/v1/messages"))
        .json(&json!({ "phone_number": "+905321234567", "content": "in flight" }))
        .send()
        .await
        .expect("created");
    let id = created.json::<serde_json::Value>().await.expect("JSON")["id"].clone();
    runner
        .http
        .post(runner.url("/api/v1/scheduler/start"))
        .send()
        .await
        .expect("started");
    assert!(
        eventually(Duration::from_secs(5), || async {
            !sink.sink.received().is_empty()
        })
        .await,
        "the batch did not start"
    );

    let status = runner.terminate(Duration::from_secs(15)).await;

    assert!(status.success(), "exit {status:?}");
    let (client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT attempts, lease_expires_at IS NULL AS released FROM messages \
             WHERE id = $1::text::uuid",
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
    let runner = Runner::start(&database_url, &sink.url).await;

    // Headers promise a body that never comes.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", runner.port))
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

    let status = runner.terminate(Duration::from_secs(20)).await;

    assert!(status.success(), "exit {status:?}");
    drop(stalled);
}

#[tokio::test]
async fn a_second_runner_on_the_same_home_is_refused_and_the_first_keeps_its_database() {
    let home = std::env::temp_dir().join(format!("qubit-home-{}", uuid::Uuid::new_v4()));
    let sink = TestSink::start().await;
    let start = |port: u16| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_qubit-local"))
            .env_remove("DATABASE_URL")
            .env("QUBIT_HOME", &home)
            .env("WEBHOOK_URL", sink.url.as_str())
            .env("SERVER_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("a runner starts")
    };
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a port")
            .local_addr()
            .expect("bound")
            .port()
    };
    let first_port = free_port();
    let mut first = start(first_port);
    let http = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{first_port}/health");
    let up = eventually(Duration::from_secs(60), || async {
        http.get(&health)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "the first runner did not come up");

    let second = start(free_port()).wait_with_output().await.expect("exits");

    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("another qubit-local"), "{said}");
    let status = http.get(&health).send().await.expect("answers").status();
    assert_eq!(status, 200, "the first runner lost its database");
    let pid = nix::unistd::Pid::from_raw(first.id().expect("running") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signalled");
    assert!(first.wait().await.expect("exits").success());
    std::fs::remove_dir_all(&home).expect("cleaned up");
}
