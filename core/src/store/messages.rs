//! Reads and writes the API makes on messages and their attempts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::message::{Message, MessageStatus, NewMessage};

/// The columns [`message_from_row`] reads, in its order.
pub(super) const MESSAGE_COLUMNS: &str = "id, phone_number, content, status, attempts, \
     webhook_message_id, last_error, created_at, next_attempt_at, processed_at";

pub(super) fn message_from_row(row: &Row) -> Message {
    let status: &str = row.get("status");
    let status = MessageStatus::parse(status).unwrap_or(MessageStatus::Pending);
    let next_attempt_at = (status == MessageStatus::Pending).then(|| row.get("next_attempt_at"));
    Message {
        id: row.get("id"),
        phone_number: row.get("phone_number"),
        content: row.get("content"),
        status,
        attempts: row.get("attempts"),
        message_id: row.get("webhook_message_id"),
        last_error: row.get("last_error"),
        created_at: row.get("created_at"),
        next_attempt_at,
        processed_at: row.get("processed_at"),
    }
}

/// Which messages a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Only(MessageStatus),
    All,
}

/// 9999-12-31T23:59:59Z in microseconds: no message is newer.
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_000_000;

/// Where a listing page starts: just after the message with this creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    created_at: DateTime<Utc>,
    id: Uuid,
}

#[derive(Debug, thiserror::Error)]
#[error("is not a cursor this API returned")]
pub struct InvalidCursor;

impl Cursor {
    /// The opaque text clients pass back as `cursor`.
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}", self.created_at.timestamp_micros(), self.id);
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(text: &str) -> Result<Self, InvalidCursor> {
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let raw = String::from_utf8(raw).map_err(|_| InvalidCursor)?;
        let (micros, id) = raw.split_once('|').ok_or(InvalidCursor)?;
        let micros: i64 = micros.parse().map_err(|_| InvalidCursor)?;
        // Every message was created after 1970 and before 10000; anything outside is forged,
        // and PostgreSQL's own range is narrower than chrono's.
        if !(0..=MAX_CURSOR_MICROS).contains(&micros) {
            return Err(InvalidCursor);
        }
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros).ok_or(InvalidCursor)?,
            id: id.parse().map_err(|_| InvalidCursor)?,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Serialize)]
pub struct Page {
    pub data: Vec<Message>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// One delivery attempt as the API shows it.
#[derive(Debug, Serialize)]
pub struct Attempt {
    pub number: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub http_status: Option<i32>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    /// The start of the webhook's answer, capped.
    pub response_excerpt: Option<String>,
}

/// What [`Store::retry_message`] and [`Store::cancel_message`] found.
#[derive(Debug)]
pub enum Transition {
    Done(Message),
    /// The message exists but is in a state the change does not apply to.
    Refused(MessageStatus),
    NotFound,
}

impl Store {
    pub async fn insert_message(&self, message: &NewMessage) -> Result<Message, StoreError> {
        let conn = self.conn().await?;

        // UUIDv7 ids sort by creation time, which keeps the primary key index compact.
        let id = Uuid::now_v7();
        let sql = format!(
            "INSERT INTO messages (id, phone_number, content) VALUES ($1, $2, $3) \
             RETURNING {MESSAGE_COLUMNS}"
        );
        let row = conn
            .query_one(
                &sql,
                &[
                    &id,
                    &message.phone_number.as_str(),
                    &message.content.as_str(),
                ],
            )
            .await?;

        Ok(message_from_row(&row))
    }

    pub async fn get_message(&self, id: Uuid) -> Result<Option<Message>, StoreError> {
        let conn = self.conn().await?;

        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        let row = conn.query_opt(&sql, &[&id]).await?;

        Ok(row.as_ref().map(message_from_row))
    }

    /// Newest first, `limit` at a time, starting after `cursor`.
    pub async fn list_messages(
        &self,
        filter: StatusFilter,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page, StoreError> {
        let conn = self.conn().await?;

        let status = match filter {
            StatusFilter::Only(status) => Some(status.as_str()),
            StatusFilter::All => None,
        };
        let (after_time, after_id) = match cursor {
            Some(cursor) => (Some(cursor.created_at), Some(cursor.id)),
            None => (None, None),
        };
        // One row more than asked tells whether another page follows.
        let fetch = i64::from(limit) + 1;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages \
             WHERE ($1::text IS NULL OR status = $1) \
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
             ORDER BY created_at DESC, id DESC \
             LIMIT $4"
        );
        let rows = conn
            .query(&sql, &[&status, &after_time, &after_id, &fetch])
            .await?;

        let mut data: Vec<Message> = rows.iter().map(message_from_row).collect();
        let next_cursor = if data.len() > limit as usize {
            data.truncate(limit as usize);
            data.last().map(|last| {
                Cursor {
                    created_at: last.created_at,
                    id: last.id,
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }

    /// The message's attempts, oldest first; `None` when there is no such message.
    pub async fn list_attempts(&self, id: Uuid) -> Result<Option<Vec<Attempt>>, StoreError> {
        let conn = self.conn().await?;

        let exists = conn
            .query_opt("SELECT 1 FROM messages WHERE id = $1", &[&id])
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = conn
            .query(
                "SELECT number, started_at, duration_ms, outcome, http_status, error_kind, \
                        error, response_excerpt \
                 FROM attempts WHERE message = $1 ORDER BY id",
                &[&id],
            )
            .await?;

        let attempts = rows
            .iter()
            .map(|row| Attempt {
                number: row.get("number"),
                started_at: row.get("started_at"),
                duration_ms: row.get("duration_ms"),
                outcome: row.get("outcome"),
                http_status: row.get("http_status"),
                error_kind: row.get("error_kind"),
                error: row.get("error"),
                response_excerpt: row.get("response_excerpt"),
            })
            .collect();
        Ok(Some(attempts))
    }

    /// Puts a `failed` message back in the queue with a fresh budget of attempts.
    pub async fn retry_message(&self, id: Uuid) -> Result<Transition, StoreError> {
        let sql = format!(
            "UPDATE messages \
             SET status = 'pending', attempts_before_retry = attempts, next_attempt_at = now(), \
                 processed_at = NULL, lease_expires_at = NULL, claim_token = NULL \
             WHERE id = $1 AND status = 'failed' \
             RETURNING {MESSAGE_COLUMNS}"
        );
        self.transition(id, &sql).await
    }

    /// Withdraws a `pending` message. A send already in flight may still reach the webhook;
    /// its outcome is then discarded because the claim no longer matches.
    pub async fn cancel_message(&self, id: Uuid) -> Result<Transition, StoreError> {
        let sql = format!(
            "UPDATE messages \
             SET status = 'cancelled', processed_at = now(), lease_expires_at = NULL, \
                 claim_token = NULL \
             WHERE id = $1 AND status = 'pending' \
             RETURNING {MESSAGE_COLUMNS}"
        );
        self.transition(id, &sql).await
    }

    async fn transition(&self, id: Uuid, sql: &str) -> Result<Transition, StoreError> {
        let conn = self.conn().await?;

        if let Some(row) = conn.query_opt(sql, &[&id]).await? {
            return Ok(Transition::Done(message_from_row(&row)));
        }

        // Nothing changed: tell a missing message from one in the wrong state.
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        Ok(match conn.query_opt(&sql, &[&id]).await? {
            Some(row) => Transition::Refused(message_from_row(&row).status),
            None => Transition::NotFound,
        })
    }

    /// How many messages still wait to be sent, leased ones included.
    pub async fn count_pending(&self) -> Result<i64, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                "SELECT count(*) FROM messages WHERE status = 'pending'",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_encoding() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).expect("valid"),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
    }

    #[test]
    fn text_that_is_not_a_cursor_is_refused() {
        let id = Uuid::now_v7();
        let before_1970 = URL_SAFE_NO_PAD.encode(format!("-8000000000000000000|{id}"));
        let after_9999 = URL_SAFE_NO_PAD.encode(format!("253402300800000000|{id}"));
        let no_id = URL_SAFE_NO_PAD.encode("12|not-a-uuid");
        for text in ["", "abc", "!!!", &no_id, &before_1970, &after_9999] {
            assert!(Cursor::decode(text).is_err(), "{text}");
        }
    }
}
