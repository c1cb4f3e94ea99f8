//! The HTTP API as one axum [`Router`], served unchanged by the local runner and the Lambda.

mod body;
mod error;
mod guard;
mod messages;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;

use crate::schedule::ScheduleControl;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub schedule: Arc<dyn ScheduleControl>,
    /// Reported by `GET /api/v1/scheduler`.
    pub interval: Duration,
    pub batch_size: u32,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route(
            "/api/v1/messages",
            post(messages::create).get(messages::list),
        )
        .route(
            "/api/v1/messages/{id}",
            get(messages::get).delete(messages::cancel),
        )
        .route("/api/v1/messages/{id}/attempts", get(messages::attempts))
        .route("/api/v1/messages/{id}/retry", post(messages::retry))
        .route("/api/v1/scheduler", get(scheduler::get))
        .route("/api/v1/scheduler/start", post(scheduler::start))
        .route("/api/v1/scheduler/stop", post(scheduler::stop))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(guard::guard))
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".to_owned()).into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    // Any failure to answer means the service cannot do its job: 503, whatever the cause.
    state
        .store
        .ping()
        .await
        .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    Ok(Json(json!({ "status": "ok" })).into_response())
}
