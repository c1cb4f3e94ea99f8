//! Reading a JSON request body into a typed value, with errors that name the field.
//!
//! axum's `Json` extractor answers plain-text errors; Qubit answers every error as JSON, and
//! says which field was missing or of the wrong type.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body accepted. A message is at most 500 characters; even escaped
/// as `\uXXXX` pairs it stays far below this.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Checks the content type and parses `body` as `T`.
pub fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }

    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(MAX_BODY_BYTES)
        } else {
            ApiError::UnreadableBody(rejection.body_text())
        }
    })?;

    // Syntax first, then shape: a body that is valid JSON but not an object (an array
    // would otherwise fill the fields by position) is refused as a whole.
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|err| ApiError::MalformedJson(err.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::InvalidField {
            field: "body".to_owned(),
            message: "must be a JSON object".to_owned(),
        });
    }

    let value = serde_path_to_error::deserialize(value).map_err(|err| {
        let field = err.path().to_string();
        ApiError::InvalidField {
            field,
            message: without_position(&err.into_inner()),
        }
    })?;

    Ok(value)
}

/// `application/json`, with or without parameters, or any `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/")
            && essence.ends_with("+json")
            && essence.len() > 17);

    // JSON is UTF-8; a body declared in another charset would be misread.
    let utf8 = parts.all(|parameter| {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        !name.trim().eq_ignore_ascii_case("charset")
            || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    json && utf8
}

/// serde's message without " at line 1 column 30", which means little to a client.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
