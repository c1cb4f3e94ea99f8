//! The webhook client: one POST per delivery attempt.
//!
//! Each request carries the auth key header and an `Idempotency-Key` equal to the message
//! id, so a receiver can drop a repeat. Redirects are never followed: a 3xx is a failed
//! attempt, and the auth key never travels to a host it was not configured for. Answers are
//! read up to [`MAX_ANSWER_BYTES`], so a misbehaving receiver cannot exhaust memory.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use uuid::Uuid;

/// The most of a webhook's answer that is read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The most of a webhook's answer kept with an attempt.
pub const EXCERPT_CHARS: usize = 500;

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: Url,
    pub auth_header: String,
    pub auth_key: Option<SecretString>,
    /// Bounds the whole request, from connecting to the last byte of the answer.
    pub timeout: Duration,
}

/// The webhook accepted a message.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub status: StatusCode,
    /// The webhook's `messageId`; `None` when its answer had none.
    pub message_id: Option<String>,
    pub excerpt: String,
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    #[error("the webhook did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the webhook could not be reached: {0}")]
    Connect(String),
    #[error("the request to the webhook failed: {0}")]
    Transport(String),
    #[error("the webhook answered {status} with a redirect, which is not followed")]
    Redirect { status: StatusCode },
    #[error("the webhook answered {status}")]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        excerpt: String,
    },
}

impl AttemptError {
    /// A short, stable name for logs and the attempts table.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::Transport(_) => "transport",
            Self::Redirect { .. } => "redirect",
            Self::Status { .. } => "http_status",
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Redirect { status } | Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn excerpt(&self) -> Option<&str> {
        match self {
            Self::Status { excerpt, .. } => Some(excerpt),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    to: &'a str,
    content: &'a str,
}

/// Sends messages to one webhook. Cheap to clone; connections are pooled.
#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    url: Url,
    timeout: Duration,
}

impl WebhookClient {
    pub fn new(settings: &WebhookSettings) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &settings.auth_key {
            let name = HeaderName::from_bytes(settings.auth_header.as_bytes())
                .map_err(|err| format!("WEBHOOK_AUTH_HEADER is not a header name: {err}"))?;
            let mut value = HeaderValue::from_str(key.expose_secret())
                .map_err(|_| "WEBHOOK_AUTH_KEY holds characters a header cannot carry")?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .timeout(settings.timeout)
            .user_agent(concat!("qubit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("the HTTP client cannot be built: {err}"))?;

        Ok(Self {
            http,
            url: settings.url.clone(),
            timeout: settings.timeout,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs one message and reads the answer.
    pub async fn send(
        &self,
        id: Uuid,
        phone_number: &str,
        content: &str,
    ) -> Result<Accepted, AttemptError> {
        let payload = Payload {
            to: phone_number,
            content,
        };
        let response = self
            .http
            .post(self.url.clone())
            .header("idempotency-key", id.to_string())
            .json(&payload)
            .send()
            .await
            .map_err(|err| self.classify(err))?;

        let status = response.status();
        let retry_after = retry_after(response.headers());
        let answer = read_capped(response)
            .await
            .map_err(|err| self.classify(err))?;
        let excerpt = excerpt(&answer);

        if status.is_redirection() {
            return Err(AttemptError::Redirect { status });
        }
        if !status.is_success() {
            return Err(AttemptError::Status {
                status,
                retry_after,
                excerpt,
            });
        }
        Ok(Accepted {
            status,
            message_id: message_id(&answer),
            excerpt,
        })
    }

    fn classify(&self, err: reqwest::Error) -> AttemptError {
        // The URL may carry a token in its query; errors end up in the API's answers.
        let err = err.without_url();
        if err.is_timeout() {
            AttemptError::Timeout(self.timeout)
        } else if err.is_connect() {
            AttemptError::Connect(crate::error::chain(&err))
        } else {
            AttemptError::Transport(crate::error::chain(&err))
        }
    }
}

async fn read_capped(mut response: Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES - answer.len();
        answer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if answer.len() == MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(answer)
}

fn excerpt(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .chars()
        .filter(|c| *c != '\0')
        .take(EXCERPT_CHARS)
        .collect()
}

/// The longest `messageId` kept; a longer one is not an id.
pub const MAX_MESSAGE_ID_CHARS: usize = 200;

/// The URL for logs: a password and the query (which may carry a token) are hidden.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if shown.query().is_some() {
        shown.set_query(Some("***"));
    }
    shown.to_string()
}

/// The `messageId` of an answer such as `{"message": "Accepted", "messageId": "..."}`.
/// An id PostgreSQL cannot store (NUL) or that is absurdly long counts as absent: the
/// message was still accepted, and must be recorded as sent rather than sent again.
fn message_id(answer: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let id = match value.get("messageId")? {
        serde_json::Value::String(id) => id.clone(),
        serde_json::Value::Number(id) => id.to_string(),
        _ => return None,
    };
    let usable = !id.is_empty() && !id.contains('\0') && id.chars().count() <= MAX_MESSAGE_ID_CHARS;
    usable.then_some(id)
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_for_the_logs_hides_its_password_and_query() {
        let url = Url::parse("https://user:hunter2@hooks.example/send?token=abc").expect("valid");
        let shown = display_url(&url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(
            shown.starts_with("https://user:***@hooks.example/send"),
            "{shown}"
        );
    }

    #[test]
    fn message_id_is_read_from_an_accepted_answer() {
        let answer =
            br#"{"message":"Accepted","messageId":"67f2f8a8-ea58-4ed0-a6f9-ff217df4d849"}"#;
        assert_eq!(
            message_id(answer).as_deref(),
            Some("67f2f8a8-ea58-4ed0-a6f9-ff217df4d849")
        );
        assert_eq!(message_id(br#"{"messageId": 42}"#).as_deref(), Some("42"));
    }

    #[test]
    fn answers_without_a_message_id_give_none() {
        let long = format!(
            r#"{{"messageId":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_ID_CHARS + 1)
        );
        for answer in [
            &b""[..],
            b"not json",
            br#"{"message":"Accepted"}"#,
            br#"{"messageId":""}"#,
            br#"{"messageId":"abc\u0000def"}"#,
            long.as_bytes(),
        ] {
            assert_eq!(message_id(answer), None);
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));

        let later = SystemTime::now() + Duration::from_secs(3600);
        let date = httpdate::fmt_http_date(later);
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&date).expect("valid header"),
        );
        let wait = retry_after(&headers).expect("a date parses");
        assert!(wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600));

        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn an_excerpt_is_capped_in_characters() {
        let answer = "ş".repeat(EXCERPT_CHARS * 2);
        assert_eq!(excerpt(answer.as_bytes()).chars().count(), EXCERPT_CHARS);
    }
}
