//! `/api/v1/messages`: create, list, read, and the per-message actions.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::body::parse_json;
use super::error::ApiError;
use crate::message::{Content, Message, MessageStatus, NewMessage, PhoneNumber};
use crate::store::{Cursor, Page, StatusFilter, Transition};

/// The most messages one page may hold.
pub const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 50;

/// The body of `POST /api/v1/messages`. Both fields are optional here so that a missing one
/// gets the same clear error as an invalid one.
#[derive(Debug, Deserialize)]
pub struct CreateMessageIn {
    phone_number: Option<String>,
    content: Option<String>,
}

impl CreateMessageIn {
    fn validate(self) -> Result<NewMessage, ApiError> {
        let required = |field: &str| ApiError::InvalidField {
            field: field.to_owned(),
            message: "is required and must be a string".to_owned(),
        };
        let phone_number = self.phone_number.ok_or_else(|| required("phone_number"))?;
        let content = self.content.ok_or_else(|| required("content"))?;

        let phone_number =
            PhoneNumber::parse(&phone_number).map_err(|err| ApiError::InvalidField {
                field: "phone_number".to_owned(),
                message: err.to_string(),
            })?;
        let content = Content::parse(content).map_err(|err| ApiError::InvalidField {
            field: "content".to_owned(),
            message: err.to_string(),
        })?;
        Ok(NewMessage {
            phone_number,
            content,
        })
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let request: CreateMessageIn = parse_json(&headers, body)?;
    let message = request.validate()?;

    let stored = state.store.insert_message(&message).await?;

    tracing::info!(message.id = %stored.id, "message created");
    Ok((StatusCode::CREATED, Json(stored)))
}

/// The query of `GET /api/v1/messages`, checked.
#[derive(Debug, PartialEq)]
struct ListQuery {
    filter: StatusFilter,
    limit: u32,
    cursor: Option<Cursor>,
}

impl ListQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|err| {
                ApiError::InvalidParameter {
                    parameter: "query",
                    message: err.to_string(),
                }
            })?;

        // Sent messages unless asked otherwise: the list is first of all a delivery log.
        let mut query = Self {
            filter: StatusFilter::Only(MessageStatus::Sent),
            limit: DEFAULT_PAGE,
            cursor: None,
        };
        for (key, value) in pairs {
            match key.as_str() {
                "status" => query.filter = parse_status(&value)?,
                "limit" => query.limit = parse_limit(&value)?,
                "cursor" if !value.is_empty() => {
                    let cursor =
                        Cursor::decode(&value).map_err(|err| ApiError::InvalidParameter {
                            parameter: "cursor",
                            message: err.to_string(),
                        })?;
                    query.cursor = Some(cursor);
                }
                _ => {}
            }
        }
        Ok(query)
    }
}

fn parse_status(value: &str) -> Result<StatusFilter, ApiError> {
    if value == "all" {
        return Ok(StatusFilter::All);
    }
    MessageStatus::parse(value)
        .map(StatusFilter::Only)
        .ok_or_else(|| ApiError::InvalidParameter {
            parameter: "status",
            message: format!(
                "must be one of pending, sent, failed, cancelled or all, got {value:?}"
            ),
        })
}

fn parse_limit(value: &str) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|limit| (1..=MAX_PAGE).contains(limit))
        .ok_or_else(|| ApiError::InvalidParameter {
            parameter: "limit",
            message: format!("must be a whole number from 1 to {MAX_PAGE}, got {value:?}"),
        })
}

pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page>, ApiError> {
    let query = ListQuery::parse(raw.as_deref())?;

    let page = state
        .store
        .list_messages(query.filter, query.limit, query.cursor)
        .await?;

    Ok(Json(page))
}

/// A message id from the path. Text that is not an id names no message, so it is a 404.
fn message_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| not_found(raw))
}

fn not_found(id: &str) -> ApiError {
    // Echo enough of the id to recognise it, not a client's 10 KB of text.
    let shown: String = id.chars().take(64).collect();
    let more = if id.chars().count() > 64 { "…" } else { "" };
    ApiError::NotFound(format!("no message with id {shown}{more}"))
}

pub async fn get(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id = message_id(&raw_id)?;

    let message = state.store.get_message(id).await?;

    message.map(Json).ok_or_else(|| not_found(&raw_id))
}

pub async fn attempts(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = message_id(&raw_id)?;

    let attempts = state.store.list_attempts(id).await?;

    let attempts = attempts.ok_or_else(|| not_found(&raw_id))?;
    Ok(Json(json!({ "data": attempts })))
}

pub async fn retry(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id = message_id(&raw_id)?;

    let transition = state.store.retry_message(id).await?;

    finish(transition, &raw_id, "retry", "failed")
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id = message_id(&raw_id)?;

    let transition = state.store.cancel_message(id).await?;

    finish(transition, &raw_id, "cancel", "pending")
}

fn finish(
    transition: Transition,
    raw_id: &str,
    action: &str,
    applies_to: &str,
) -> Result<Json<Message>, ApiError> {
    match transition {
        Transition::Done(message) => {
            tracing::info!(message.id = %message.id, action, "message state changed");
            Ok(Json(message))
        }
        Transition::Refused(status) => Err(ApiError::Conflict(format!(
            "cannot {action} message {raw_id}: it is {}, and only a {applies_to} message can be",
            status.as_str()
        ))),
        Transition::NotFound => Err(not_found(raw_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_query_lists_sent_messages_fifty_at_a_time() {
        let query = ListQuery::parse(None).expect("valid");
        assert_eq!(query.filter, StatusFilter::Only(MessageStatus::Sent));
        assert_eq!(query.limit, 50);
        assert_eq!(query.cursor, None);
    }

    #[test]
    fn limits_outside_one_to_five_hundred_are_refused() {
        for raw in ["limit=0", "limit=501", "limit=-1", "limit=ten", "limit="] {
            assert!(ListQuery::parse(Some(raw)).is_err(), "{raw}");
        }
        let query = ListQuery::parse(Some("limit=500&status=all")).expect("valid");
        assert_eq!(query.limit, 500);
        assert_eq!(query.filter, StatusFilter::All);
    }

    #[test]
    fn an_unknown_status_is_refused() {
        assert!(ListQuery::parse(Some("status=delivered")).is_err());
    }
}
