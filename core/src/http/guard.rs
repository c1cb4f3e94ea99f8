//! What every request passes through: a bound on its size and its time, and JSON errors
//! for the rejections the framework makes before a handler runs.

use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::body::MAX_BODY_BYTES;
use super::error::ApiError;

/// How long a request may take, reading its body included, before it is answered 408. A
/// client that sends half a request must not hold a connection, or a shutdown, for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn guard(request: Request, next: Next) -> Response {
    // A body declared too large is refused before any of it is read.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return ApiError::PayloadTooLarge(MAX_BODY_BYTES).into_response();
    }

    let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => return ApiError::RequestTimeout(REQUEST_TIMEOUT.as_secs()).into_response(),
    };

    as_json(response).await
}

/// Turns a framework's plain-text error into Qubit's JSON error, keeping its status.
async fn as_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }

    let (parts, body) = response.into_parts();
    let text = to_bytes(body, 4096).await.unwrap_or_default();
    let message = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("rejected").to_owned(),
        text => text.to_owned(),
    };
    let mut json = ApiError::Rejected { status, message }.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}
