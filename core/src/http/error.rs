//! Every error the API answers with, and the one place each becomes a status and a body.
//!
//! 4xx bodies name the problem so a client can fix its request. 5xx bodies stay generic; the
//! cause is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::schedule::ScheduleError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field of the JSON body is missing, of the wrong type, or breaks a message rule.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be JSON, sent with content-type: application/json")]
    UnsupportedMediaType,
    #[error("the body is larger than the {0} bytes allowed")]
    PayloadTooLarge(usize),
    #[error("the body could not be read: {0}")]
    UnreadableBody(String),
    #[error("query parameter {parameter}: {message}")]
    InvalidParameter {
        parameter: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request was not completed within {0} seconds")]
    RequestTimeout(u64),
    /// A request the framework refused before a handler saw it, such as a path that is not
    /// UTF-8; the status and text are the framework's.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    #[error("no such route")]
    RouteNotFound,
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedJson(_) | Self::UnreadableBody(_) | Self::InvalidParameter { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Rejected { status, .. } => *status,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidField { .. } => "invalid_field",
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::NotFound(_) | Self::RouteNotFound => "not_found",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Rejected { .. } => "bad_request",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if err.is_unavailable() {
            Self::Unavailable(err.to_string())
        } else {
            Self::Internal(crate::error::chain(&err))
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(err: ScheduleError) -> Self {
        // Either way the client can do nothing but try later; a misconfigured schedule
        // also needs an operator, so it is logged as an error here.
        if let ScheduleError::Misconfigured(cause) = &err {
            tracing::error!(error.message = %cause, "the dispatch schedule is misconfigured");
        }
        Self::Unavailable(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Unavailable(cause) => {
                tracing::warn!(error.message = %cause, "answering 503");
                "a backing service is unavailable; try again shortly".to_owned()
            }
            Self::Internal(cause) => {
                tracing::error!(error.message = %cause, "answering 500");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };

        let mut error = json!({ "code": self.code(), "message": message });
        match &self {
            Self::InvalidField { field, .. } => error["field"] = json!(field),
            Self::InvalidParameter { parameter, .. } => error["parameter"] = json!(parameter),
            _ => {}
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
