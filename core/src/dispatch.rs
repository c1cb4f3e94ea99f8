//! The dispatcher: claim a batch, send each message to the webhook, record each outcome.
//!
//! [`Dispatcher::run_batch`] is one tick's work. The local runner calls it from
//! [`run_ticks`] on a timer; the dispatch Lambda calls it once per invocation.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use serde::Serialize;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::retry::RetryPolicy;
use crate::store::{AttemptRecord, Claim, Outcome, Store, StoreError};
use crate::webhook::{Accepted, AttemptError, WebhookClient};

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Messages the webhook accepted.
    pub sent: usize,
    /// Attempts that failed; the message is retried later or, out of attempts, `failed`.
    pub failed: usize,
    /// Outcomes not recorded: the claim was lost or the database was unreachable.
    pub unrecorded: usize,
    /// Messages still pending after the batch, leased ones included; `None` when the
    /// count could not be read.
    pub left: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub batch_size: u32,
    pub lease: Duration,
    pub retry: RetryPolicy,
}

/// Sends due messages. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    webhook: WebhookClient,
    settings: DispatchSettings,
}

impl Dispatcher {
    pub fn new(store: Store, webhook: WebhookClient, settings: DispatchSettings) -> Self {
        Self {
            store,
            webhook,
            settings,
        }
    }

    /// Claims up to one batch and sends it, all messages at once. Fails only when the
    /// claim itself fails; a failed send or record is counted in the report instead.
    pub async fn run_batch(&self) -> Result<BatchReport, StoreError> {
        let span = tracing::info_span!("batch", batch.size = tracing::field::Empty);

        async {
            let claims = self
                .store
                .claim_batch(self.settings.batch_size, self.settings.lease)
                .await?;
            tracing::Span::current().record("batch.size", claims.len());

            let outcomes =
                futures::future::join_all(claims.iter().map(|claim| self.deliver(claim))).await;

            let mut report = BatchReport {
                claimed: claims.len(),
                ..BatchReport::default()
            };
            for outcome in outcomes {
                match outcome {
                    Delivery::Sent => report.sent += 1,
                    Delivery::Failed => report.failed += 1,
                    Delivery::Unrecorded => report.unrecorded += 1,
                }
            }
            report.left = self.store.count_pending().await.ok();

            if report.claimed > 0 {
                tracing::info!(
                    batch.claimed = report.claimed,
                    batch.sent = report.sent,
                    batch.failed = report.failed,
                    batch.unrecorded = report.unrecorded,
                    queue.pending = report.left,
                    "batch done"
                );
            } else {
                tracing::debug!(queue.pending = report.left, "nothing due");
            }
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// One attempt at one message, and its record.
    async fn deliver(&self, claim: &Claim) -> Delivery {
        let started_at = Utc::now();
        let clock = Instant::now();
        let sent = self
            .webhook
            .send(claim.id, &claim.phone_number, &claim.content)
            .await;
        let duration = clock.elapsed();

        let attempts_spent = u32::try_from(claim.attempts_in_budget + 1).unwrap_or(u32::MAX);
        let (outcome, attempt) = match &sent {
            Ok(accepted) => {
                if accepted.message_id.is_none() {
                    tracing::warn!(
                        message.id = %claim.id,
                        http.status_code = accepted.status.as_u16(),
                        "webhook accepted the message without a messageId"
                    );
                }
                let outcome = Outcome::Delivered {
                    message_id: accepted.message_id.clone(),
                };
                let attempt = AttemptRecord {
                    started_at,
                    duration,
                    http_status: Some(accepted.status.as_u16()),
                    error_kind: None,
                    error: None,
                    response_excerpt: Some(accepted.excerpt.clone()),
                };
                (outcome, attempt)
            }
            Err(error) => {
                let outcome = self.settings.retry.after_failure(attempts_spent, error);
                let attempt = AttemptRecord {
                    started_at,
                    duration,
                    http_status: error.status().map(|status| status.as_u16()),
                    error_kind: Some(error.kind()),
                    error: Some(error.to_string()),
                    response_excerpt: error.excerpt().map(str::to_owned),
                };
                (outcome, attempt)
            }
        };

        let recorded = self.record(claim, &outcome, &attempt).await;

        log_outcome(claim, &sent, &outcome, duration, &recorded);
        match (recorded, &outcome) {
            (Ok(true), Outcome::Delivered { .. }) => Delivery::Sent,
            (Ok(true), _) => Delivery::Failed,
            _ => Delivery::Unrecorded,
        }
    }

    /// Records an outcome, retrying while the database is unreachable and the lease still
    /// holds. The message has been sent: giving up here means sending it again once the
    /// lease runs out, so a database that comes back within the lease costs no repeat.
    async fn record(
        &self,
        claim: &Claim,
        outcome: &Outcome,
        attempt: &AttemptRecord,
    ) -> Result<bool, StoreError> {
        let lease_left = (claim.lease_expires_at - Utc::now())
            .to_std()
            .unwrap_or_default();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter()
            .with_total_delay(Some(lease_left.saturating_sub(Duration::from_millis(500))))
            .without_max_times();

        (|| self.store.record_outcome(claim, outcome, attempt))
            .retry(backoff)
            .when(StoreError::is_unavailable)
            .notify(|err, wait| {
                tracing::debug!(
                    message.id = %claim.id,
                    error.message = %err,
                    retry_in_ms = wait.as_millis() as u64,
                    "recording the outcome failed; retrying"
                );
            })
            .await
    }
}

enum Delivery {
    Sent,
    Failed,
    Unrecorded,
}

fn log_outcome(
    claim: &Claim,
    sent: &Result<Accepted, AttemptError>,
    outcome: &Outcome,
    duration: Duration,
    recorded: &Result<bool, StoreError>,
) {
    let attempt = claim.attempt_number();
    let duration_ms = duration.as_millis() as u64;
    match recorded {
        Err(err) => {
            // The lease runs out and another claim sends the message again, with the same
            // Idempotency-Key: the one case where a receiver may see a repeat.
            tracing::error!(
                message.id = %claim.id,
                attempt,
                error.message = %err,
                "outcome not recorded; the message will be claimed again when its lease ends"
            );
            return;
        }
        Ok(false) => {
            tracing::warn!(
                message.id = %claim.id,
                attempt,
                "claim lost before the outcome was recorded; outcome dropped"
            );
            return;
        }
        Ok(true) => {}
    }
    match (sent, outcome) {
        (Ok(accepted), _) => tracing::info!(
            message.id = %claim.id,
            attempt,
            http.status_code = accepted.status.as_u16(),
            webhook.message_id = accepted.message_id.as_deref().unwrap_or(""),
            duration_ms,
            "message sent"
        ),
        (Err(error), Outcome::RetryLater { retry_in }) => tracing::info!(
            message.id = %claim.id,
            attempt,
            error.kind = error.kind(),
            error.message = %error,
            retry_in_ms = retry_in.as_millis() as u64,
            duration_ms,
            "attempt failed; will retry"
        ),
        (Err(error), _) => tracing::warn!(
            message.id = %claim.id,
            attempt,
            error.kind = error.kind(),
            error.message = %error,
            duration_ms,
            "attempt failed; message marked failed"
        ),
    }
}

/// Runs one batch per `interval` while the shared scheduler state says running, until
/// `shutdown` resolves. A batch in flight at shutdown is finished and recorded first.
///
/// The state is read at least once a second, so a start or stop made through any instance
/// takes effect here within a second; `wake` makes it immediate for this instance. After a
/// start the first batch goes out at once, then one per interval.
pub async fn run_ticks(
    dispatcher: Dispatcher,
    store: Store,
    interval: Duration,
    wake: Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) {
    let poll = interval.min(Duration::from_secs(1));
    let mut next_batch: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);

    loop {
        let now = tokio::time::Instant::now();
        let wake_at = next_batch.map_or(now + poll, |due| due.min(now + poll));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = wake.notified() => {}
        }

        let running = match store.scheduler_running().await {
            Ok(running) => running,
            Err(err) => {
                // Forget the due batch, so the loop waits a full poll before reading again
                // instead of spinning on a database that is down.
                tracing::warn!(error.message = %err, "cannot read the scheduler state");
                next_batch = None;
                continue;
            }
        };
        if !running {
            next_batch = None;
            continue;
        }

        let now = tokio::time::Instant::now();
        if next_batch.is_some_and(|due| now < due) {
            continue;
        }
        // Measured from the batch's start, so the period stays fixed however long it takes.
        next_batch = Some(now + interval);
        if let Err(err) = dispatcher.run_batch().await {
            tracing::warn!(error.message = %err, "batch could not claim messages");
        }
    }
    tracing::info!("dispatch stopped");
}
