//! Test fixtures: a fresh database per test, a real receiver on loopback, and the real
//! router served on a free port.
//!
//! The tests need a PostgreSQL server whose URL is in `DATABASE_URL`; `make test` starts a
//! throwaway one. Each test creates a database of its own in it, so tests run in parallel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use qubit_core::app::App;
use qubit_core::config::Config;
use qubit_core::dispatch::{Dispatcher, run_ticks};
use qubit_core::store::Store;
use qubit_local::sink::{Sink, SinkSettings};
use reqwest::Url;
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const AUTH_KEY: &str = "test-auth-key";

fn server_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a PostgreSQL server the tests may create databases in; \
         `make test` starts one",
    )
}

/// A connection to the test server's maintenance database.
pub async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL answers");
    tokio::spawn(connection);
    client
}

/// The database a URL names.
pub fn database_name(url: &str) -> String {
    let url = Url::parse(url).expect("a URL");
    url.path().trim_start_matches('/').to_owned()
}

/// A new, empty database; returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let client = admin().await;

    let name = format!("qubit_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("a test database can be created");

    let mut url = Url::parse(&server).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A running receiver on a free loopback port.
pub struct TestSink {
    pub sink: Sink,
    pub url: Url,
    shutdown: CancellationToken,
}

impl TestSink {
    pub async fn start() -> Self {
        let sink = Sink::new(SinkSettings {
            auth_header: "x-ins-auth-key".to_owned(),
            auth_key: Some(AUTH_KEY.to_owned()),
            ..SinkSettings::default()
        });
        let shutdown = CancellationToken::new();
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let (bound, _) = sink
            .serve(loopback, shutdown.clone().cancelled_owned())
            .await
            .expect("the sink binds");
        let url = format!("http://{bound}/webhook")
            .parse()
            .expect("valid URL");
        Self {
            sink,
            url,
            shutdown,
        }
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Qubit's parts over a fresh database, its API served on a free port. The tick loop is
/// not running unless a test starts it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub database_url: String,
    pub config: Config,
    app_wake: std::sync::Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
    ticks: Option<tokio::task::JoinHandle<()>>,
}

/// Settings a test may change; anything else comes from the defaults.
pub fn settings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("WEBHOOK_AUTH_KEY", AUTH_KEY),
        ("SCHEDULER_AUTOSTART", "false"),
        ("SCHEDULER_INTERVAL", "1h"),
        ("WEBHOOK_TIMEOUT", "2s"),
        ("LEASE_DURATION", "10s"),
        ("RETRY_BASE_DELAY", "1ms"),
        ("RETRY_MAX_DELAY", "1ms"),
        ("DATABASE_TIMEOUT", "3s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (key, value) in pairs {
        env.insert((*key).to_owned(), (*value).to_owned());
    }
    env
}

impl TestApp {
    /// An instance on its own fresh database.
    pub async fn spawn(sink: &Url, env: HashMap<String, String>) -> Self {
        let database_url = fresh_database().await;
        Self::on(&database_url, sink, env).await
    }

    /// An instance on an existing database, as a second runner sharing it would be.
    pub async fn on(database_url: &str, sink: &Url, env: HashMap<String, String>) -> Self {
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("valid settings");
        let app = App::build(
            &config,
            SecretString::from(database_url.to_owned()),
            sink.clone(),
        )
        .await
        .expect("the app starts");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let shutdown = CancellationToken::new();
        let router = qubit_core::http::router(app.state);
        let stop = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
                .expect("the server runs");
        });

        Self {
            base,
            http: reqwest::Client::new(),
            store: app.store,
            dispatcher: app.dispatcher,
            database_url: database_url.to_owned(),
            config,
            app_wake: app.wake,
            shutdown,
            ticks: None,
        }
    }

    /// Runs this instance's tick loop, as the local runner does.
    pub fn start_ticks(&mut self) {
        let ticks = tokio::spawn(run_ticks(
            self.dispatcher.clone(),
            self.store.clone(),
            self.config.scheduler_interval,
            self.app_wake.clone(),
            self.shutdown.clone().cancelled_owned(),
        ));
        self.ticks = Some(ticks);
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("the API answers");
        read(response).await
    }

    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the API answers");
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the API answers");
        read(response).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the API answers");
        read(response).await
    }

    /// Creates a valid message and returns its id.
    pub async fn create(&self, content: &str) -> String {
        let body = serde_json::json!({ "phone_number": "+905321234567", "content": content });
        let (status, message) = self.post("/api/v1/messages", &body).await;
        assert_eq!(status, 201, "{message}");
        message["id"].as_str().expect("an id").to_owned()
    }

    pub async fn message(&self, id: &str) -> Value {
        let (status, message) = self.get(&format!("/api/v1/messages/{id}")).await;
        assert_eq!(status, 200, "{message}");
        message
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The status and the JSON body; every answer of the API must be JSON.
pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("answer {status} is not JSON: {text:?}"));
    (status, body)
}

/// Polls `check` until it holds or `within` runs out.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
