//! The dispatcher's side of the queue: claim a batch, then record each outcome.
//!
//! No transaction stays open while the webhook is called. A claim marks its rows with a
//! lease and a claim token and commits at once; each outcome is recorded later in a
//! statement that checks the token. Should the sender die, its lease runs out and another
//! dispatcher claims the message; should it come back after that, the token no longer
//! matches and its outcome is dropped instead of overwriting the newer claim's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

/// A message this dispatcher holds until `lease_expires_at`.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: Uuid,
    pub phone_number: String,
    pub content: String,
    /// Attempts recorded before this one.
    pub attempts: i32,
    /// Attempts that count against the retry budget before this one.
    pub attempts_in_budget: i32,
    pub token: Uuid,
    pub lease_expires_at: DateTime<Utc>,
}

impl Claim {
    /// The number this attempt will be recorded under.
    pub fn attempt_number(&self) -> i32 {
        self.attempts + 1
    }
}

/// What an attempt came to, as the store records it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The webhook accepted the message, answering with this `messageId` if it gave one.
    Delivered { message_id: Option<String> },
    /// The attempt failed; try again after `retry_in`.
    RetryLater { retry_in: Duration },
    /// The attempt failed and no other will be made.
    GiveUp,
}

/// The facts of one attempt, kept in the `attempts` table.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    pub http_status: Option<u16>,
    pub error_kind: Option<&'static str>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

impl Store {
    /// Claims up to `limit` due messages, oldest first, for `lease`.
    pub async fn claim_batch(&self, limit: u32, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        let conn = self.conn().await?;

        // One statement, so the claim commits the moment it is made. SKIP LOCKED lets
        // concurrent dispatchers pass over rows another is claiming right now instead of
        // waiting for them; the lease then keeps those rows out of later claims until the
        // outcome is recorded or the lease runs out.
        let rows = conn
            .query(
                "WITH due AS ( \
                     SELECT id FROM messages \
                     WHERE status = 'pending' \
                       AND next_attempt_at <= now() \
                       AND (lease_expires_at IS NULL OR lease_expires_at <= now()) \
                     ORDER BY created_at, id \
                     LIMIT $1 \
                     FOR UPDATE SKIP LOCKED \
                 ) \
                 UPDATE messages AS m \
                 SET lease_expires_at = now() + make_interval(secs => $2), \
                     claim_token = gen_random_uuid() \
                 FROM due \
                 WHERE m.id = due.id \
                 RETURNING m.id, m.phone_number, m.content, m.attempts, \
                           m.attempts - m.attempts_before_retry AS attempts_in_budget, \
                           m.claim_token, m.lease_expires_at, m.created_at",
                &[&i64::from(limit), &lease.as_secs_f64()],
            )
            .await?;

        let mut claims: Vec<(DateTime<Utc>, Claim)> = rows
            .iter()
            .map(|row| {
                let claim = Claim {
                    id: row.get("id"),
                    phone_number: row.get("phone_number"),
                    content: row.get("content"),
                    attempts: row.get("attempts"),
                    attempts_in_budget: row.get("attempts_in_budget"),
                    token: row.get("claim_token"),
                    lease_expires_at: row.get("lease_expires_at"),
                };
                (row.get("created_at"), claim)
            })
            .collect();
        // RETURNING does not keep the CTE's order.
        claims.sort_by_key(|(created_at, claim)| (*created_at, claim.id));

        Ok(claims.into_iter().map(|(_, claim)| claim).collect())
    }

    /// Records an attempt's outcome if `claim` still holds the message. Returns false when
    /// the claim was lost (its lease ran out and another claim, or a cancel, came after),
    /// in which case nothing is written.
    pub async fn record_outcome(
        &self,
        claim: &Claim,
        outcome: &Outcome,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let conn = self.conn().await?;

        let (status, message_id, retry_in) = match outcome {
            Outcome::Delivered { message_id } => ("sent", message_id.as_deref(), 0.0),
            Outcome::RetryLater { retry_in } => ("pending", None, retry_in.as_secs_f64()),
            Outcome::GiveUp => ("failed", None, 0.0),
        };
        let delivered = matches!(outcome, Outcome::Delivered { .. });
        let duration_ms = i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX);
        let http_status = attempt.http_status.map(i32::from);

        // The update and the attempt row go together in one statement; the token in the
        // WHERE clause is the fence.
        let row = conn
            .query_opt(
                "WITH fenced AS ( \
                     UPDATE messages \
                     SET status = $3, \
                         attempts = attempts + 1, \
                         webhook_message_id = $4, \
                         last_error = $5, \
                         next_attempt_at = now() + make_interval(secs => $6), \
                         processed_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END, \
                         lease_expires_at = NULL, \
                         claim_token = NULL \
                     WHERE id = $1 AND claim_token = $2 AND status = 'pending' \
                     RETURNING id, attempts \
                 ) \
                 INSERT INTO attempts (message, number, started_at, duration_ms, outcome, \
                                       http_status, error_kind, error, response_excerpt) \
                 SELECT id, attempts, $7, $8, $9, $10, $11, $12, $13 FROM fenced \
                 RETURNING number",
                &[
                    &claim.id,
                    &claim.token,
                    &status,
                    &message_id,
                    &attempt.error,
                    &retry_in,
                    &attempt.started_at,
                    &duration_ms,
                    &if delivered { "delivered" } else { "failed" },
                    &http_status,
                    &attempt.error_kind,
                    &attempt.error,
                    &attempt.response_excerpt,
                ],
            )
            .await?;

        Ok(row.is_some())
    }
}
