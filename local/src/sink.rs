//! The webhook test service: a receiver that answers like the real provider and records
//! what it got.
//!
//! It answers `202 {"message": "Accepted", "messageId": <uuid>}` to a POST on any path,
//! checks the auth key when given one, and can be told to fail a share of requests with a
//! given status or to stall a share of them. Every request is recorded in arrival order;
//! `GET /received` lists them and `PUT /behaviour` changes how it answers.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// How the sink answers. Shares are fractions from 0 to 1.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// The share of requests answered with `fail_status` instead of 202.
    pub fail_rate: f64,
    pub fail_status: u16,
    /// The share of requests held for `delay` and then answered 503: a receiver that hung
    /// without taking the message.
    pub slow_rate: f64,
    /// In milliseconds, as `delay_ms` in JSON.
    #[serde(rename = "delay_ms", with = "millis")]
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            fail_rate: 0.0,
            fail_status: 500,
            slow_rate: 0.0,
            delay: Duration::ZERO,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// What the sink got, one entry per request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Received {
    pub n: u64,
    pub received_at: DateTime<Utc>,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub auth_ok: bool,
    pub to: Option<String>,
    pub content: Option<String>,
    /// The status it answered.
    pub status: u16,
    /// The `messageId` it answered with, for accepted requests.
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SinkSettings {
    pub auth_header: String,
    pub auth_key: Option<String>,
    pub behaviour: Behaviour,
    /// Also append each record as a JSON line to this file.
    pub log: Option<PathBuf>,
}

struct Inner {
    settings: SinkSettings,
    received: Vec<Received>,
}

/// A handle on a running sink's state, shared with its handlers.
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Mutex<Inner>>,
}

impl Sink {
    pub fn new(settings: SinkSettings) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                settings,
                received: Vec::new(),
            })),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.lock().settings.behaviour = behaviour;
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/received", get(list).delete(clear))
            .route("/behaviour", get(show_behaviour).put(change_behaviour))
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(self.clone())
    }

    /// Serves on `addr` until `shutdown` resolves; returns the bound address at once.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error.message = %err, "webhook sink stopped");
            }
        });
        Ok((bound, task))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data that is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Deserialize)]
struct Payload {
    to: Option<String>,
    content: Option<String>,
}

enum Answer {
    Accept,
    Fail(StatusCode),
    Stall(Duration),
    Unauthorized,
}

async fn receive(
    State(sink): State<Sink>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let payload: Option<Payload> = serde_json::from_slice(&body).ok();
    let idempotency_key = header(&headers, "idempotency-key");

    let (answer, record) = {
        let mut inner = sink.lock();
        let settings = &inner.settings;
        let auth_ok = match &settings.auth_key {
            Some(key) => header(&headers, &settings.auth_header).as_deref() == Some(key),
            None => true,
        };
        let behaviour = &settings.behaviour;
        let answer = if !auth_ok {
            Answer::Unauthorized
        } else if fastrand::f64() < behaviour.slow_rate && !behaviour.delay.is_zero() {
            Answer::Stall(behaviour.delay)
        } else if fastrand::f64() < behaviour.fail_rate {
            Answer::Fail(
                StatusCode::from_u16(behaviour.fail_status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            )
        } else {
            Answer::Accept
        };
        let status = match &answer {
            Answer::Accept => StatusCode::ACCEPTED,
            Answer::Fail(status) => *status,
            Answer::Stall(_) => StatusCode::SERVICE_UNAVAILABLE,
            Answer::Unauthorized => StatusCode::UNAUTHORIZED,
        };
        let record = Received {
            n: inner.received.len() as u64 + 1,
            received_at: Utc::now(),
            path: uri.path().to_owned(),
            idempotency_key,
            auth_ok,
            to: payload.as_ref().and_then(|p| p.to.clone()),
            content: payload.and_then(|p| p.content),
            status: status.as_u16(),
            message_id: matches!(answer, Answer::Accept).then(|| Uuid::new_v4().to_string()),
        };
        if let Some(path) = &inner.settings.log {
            append(path, &record);
        }
        inner.received.push(record.clone());
        (answer, record)
    };

    match answer {
        Answer::Accept => (
            StatusCode::ACCEPTED,
            Json(json!({ "message": "Accepted", "messageId": record.message_id })),
        )
            .into_response(),
        Answer::Fail(status) => {
            (status, Json(json!({ "error": "failing as told" }))).into_response()
        }
        Answer::Stall(delay) => {
            tokio::time::sleep(delay).await;
            let body = Json(json!({ "error": "stalled as told" }));
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
        Answer::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "missing or wrong auth key" })),
        )
            .into_response(),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn append(path: &PathBuf, record: &Received) {
    let line = match serde_json::to_string(record) {
        Ok(line) => line,
        Err(_) => return,
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| writeln!(file, "{line}"));
    if let Err(err) = written {
        tracing::warn!(path = %path.display(), error.message = %err, "cannot append to the log");
    }
}

async fn list(State(sink): State<Sink>) -> Json<Vec<Received>> {
    Json(sink.received())
}

async fn clear(State(sink): State<Sink>) -> StatusCode {
    sink.lock().received.clear();
    StatusCode::NO_CONTENT
}

async fn show_behaviour(State(sink): State<Sink>) -> Json<Behaviour> {
    Json(sink.lock().settings.behaviour.clone())
}

/// Replaces the whole behaviour: fields left out take their defaults.
async fn change_behaviour(State(sink): State<Sink>, Json(behaviour): Json<Behaviour>) -> Response {
    let share = 0.0..=1.0;
    if !share.contains(&behaviour.fail_rate) || !share.contains(&behaviour.slow_rate) {
        let error = json!({ "error": "fail_rate and slow_rate are shares from 0 to 1" });
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(error)).into_response();
    }
    sink.set_behaviour(behaviour.clone());
    Json(behaviour).into_response()
}
