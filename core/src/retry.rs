//! When a failed attempt is tried again, and when Qubit gives up.
//!
//! Delays grow exponentially from the base delay with random jitter, so dispatchers that
//! failed together do not retry together, and never exceed the maximum delay. A receiver's
//! `Retry-After` is honoured up to that same maximum.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::StatusCode;

use crate::store::Outcome;
use crate::webhook::AttemptError;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts a message gets before it becomes `failed`.
    pub max_attempts: u32,
    /// The delay after the first failed attempt.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// What follows a failed attempt, given the attempts already spent from the budget,
    /// this one included.
    pub fn after_failure(&self, attempts_spent: u32, error: &AttemptError) -> Outcome {
        if !is_retryable(error) || attempts_spent >= self.max_attempts {
            return Outcome::GiveUp;
        }

        let backoff = self.backoff(attempts_spent);
        let asked = match error {
            AttemptError::Status {
                retry_after: Some(wait),
                ..
            } => (*wait).min(self.max_delay),
            _ => Duration::ZERO,
        };
        Outcome::RetryLater {
            retry_in: backoff.max(asked),
        }
    }

    /// The jittered delay after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let delay = ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay);
        delay.min(self.max_delay)
    }
}

/// Whether another attempt could succeed.
///
/// 400, 413, 415 and 422 say the receiver refuses this message's request itself; sending the
/// same request again gets the same answer. Everything else (timeouts, connection errors,
/// redirects, 5xx, 429, and 4xx such as 401, 403 or 404 that a fix on either side can clear)
/// is tried again until the attempts run out.
pub fn is_retryable(error: &AttemptError) -> bool {
    match error {
        AttemptError::Status { status, .. } => !matches!(
            *status,
            StatusCode::BAD_REQUEST
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
                | StatusCode::UNPROCESSABLE_ENTITY
        ),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
        }
    }

    fn status(code: u16, retry_after: Option<Duration>) -> AttemptError {
        AttemptError::Status {
            status: StatusCode::from_u16(code).expect("valid status"),
            retry_after,
            excerpt: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        let policy = policy();
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_secs(30) && first < Duration::from_secs(60));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_secs(120) && third < Duration::from_secs(240));
            assert!(policy.backoff(30) <= Duration::from_secs(3600));
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        let policy = policy();
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.backoff(2)).collect();
        assert!(delays.len() > 1, "twenty draws gave one delay");
    }

    #[test]
    fn the_last_allowed_attempt_gives_up() {
        let policy = policy();
        assert!(matches!(
            policy.after_failure(4, &status(500, None)),
            Outcome::RetryLater { .. }
        ));
        assert!(matches!(
            policy.after_failure(5, &status(500, None)),
            Outcome::GiveUp
        ));
    }

    #[test]
    fn a_refused_request_is_not_retried() {
        for code in [400, 413, 415, 422] {
            assert!(matches!(
                policy().after_failure(1, &status(code, None)),
                Outcome::GiveUp
            ));
        }
        for code in [401, 403, 404, 408, 429, 500, 503] {
            assert!(matches!(
                policy().after_failure(1, &status(code, None)),
                Outcome::RetryLater { .. }
            ));
        }
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        let policy = policy();
        let Outcome::RetryLater { retry_in } =
            policy.after_failure(1, &status(429, Some(Duration::from_secs(600))))
        else {
            panic!("429 is retried");
        };
        assert_eq!(retry_in, Duration::from_secs(600));

        let Outcome::RetryLater { retry_in } =
            policy.after_failure(1, &status(503, Some(Duration::from_secs(86_400))))
        else {
            panic!("503 is retried");
        };
        assert_eq!(retry_in, Duration::from_secs(3600));
    }
}
