//! Settings read once from the environment at start-up.
//!
//! Every setting has a documented variable and default. A missing or malformed value is a
//! [`ConfigError`] that names the variable, so start-up fails with one clear line instead of
//! running with a half-understood configuration. Secrets are held in [`SecretString`], which
//! never prints.

use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

/// The header that carries the webhook auth key unless `WEBHOOK_AUTH_HEADER` says otherwise.
pub const DEFAULT_AUTH_HEADER: &str = "x-ins-auth-key";

/// A setting that could not be used, with the variable that holds it.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// Everything Qubit reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`: PostgreSQL connection URL. When unset, the local runner starts a
    /// private PostgreSQL; the Lambda functions require it.
    pub database_url: Option<SecretString>,
    /// `DATABASE_URL_PARAMETER`: the name of an SSM SecureString parameter holding the
    /// database URL; read at start-up by [`crate::secrets::resolve`] and wins over
    /// `DATABASE_URL`. For Lambda, where plain-text secrets in the environment are avoided.
    pub database_url_parameter: Option<String>,
    /// `DATABASE_CA_FILE`: a PEM bundle of extra root certificates trusted for the database's
    /// TLS certificate (such as the RDS bundle). Unset: the system roots only.
    pub database_ca_file: Option<String>,
    /// `DATABASE_POOL_SIZE`: connections kept per process. Default 8.
    pub database_pool_size: usize,
    /// `DATABASE_TIMEOUT`: the longest a query, a connect or a wait for a pooled connection
    /// may take before the request answers 503. Default `5s`.
    pub database_timeout: Duration,
    /// `WEBHOOK_URL`: where messages are POSTed. When unset, the local runner starts its
    /// webhook test service in-process and sends there.
    pub webhook_url: Option<Url>,
    /// `WEBHOOK_AUTH_KEY`: sent in the auth header with every webhook request. Optional.
    pub webhook_auth_key: Option<SecretString>,
    /// `WEBHOOK_AUTH_KEY_PARAMETER`: the name of an SSM SecureString parameter holding the
    /// webhook auth key, as `DATABASE_URL_PARAMETER` is for the database URL.
    pub webhook_auth_key_parameter: Option<String>,
    /// `WEBHOOK_AUTH_HEADER`: the auth header's name. Default `x-ins-auth-key`.
    pub webhook_auth_header: String,
    /// `WEBHOOK_TIMEOUT`: the longest one webhook request may take, connect included.
    /// Default `10s`.
    pub webhook_timeout: Duration,
    /// `SERVER_HOST`: the address the local runner listens on. Default `127.0.0.1`.
    pub server_host: String,
    /// `SERVER_PORT`: the local runner's HTTP port. Default 8080.
    pub server_port: u16,
    /// `SCHEDULER_INTERVAL` (a duration such as `2m` or `500ms`), else
    /// `SCHEDULER_INTERVAL_MINUTES`: time between two batches of one instance. Default 2 minutes.
    pub scheduler_interval: Duration,
    /// `MESSAGE_BATCH_SIZE`: the most messages one batch claims. Default 2.
    pub batch_size: u32,
    /// `SCHEDULER_AUTOSTART`: the scheduler state a fresh database starts in (`true` =
    /// running). A database that already has a state keeps it across restarts. Default true.
    pub scheduler_autostart: bool,
    /// `LEASE_DURATION`: how long a claim holds a message before another dispatcher may take
    /// it. Must exceed `WEBHOOK_TIMEOUT`. Default `60s`.
    pub lease_duration: Duration,
    /// `MAX_ATTEMPTS`: attempts before a message becomes `failed`. Default 5.
    pub max_attempts: u32,
    /// `RETRY_BASE_DELAY`: the delay before the second attempt; later delays double. Default `30s`.
    pub retry_base_delay: Duration,
    /// `RETRY_MAX_DELAY`: the cap on any retry delay, `Retry-After` included. Default `1h`.
    pub retry_max_delay: Duration,
    /// `SCHEDULE_NAME`: the EventBridge Scheduler schedule that start/stop act on. When set,
    /// the scheduler state lives in that schedule instead of the database.
    pub schedule_name: Option<String>,
    /// `SCHEDULE_GROUP`: the schedule's group. Default `default`.
    pub schedule_group: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);

        let scheduler_interval = match env.duration("SCHEDULER_INTERVAL")? {
            Some(interval) => interval,
            None => Duration::from_secs(60 * env.parsed("SCHEDULER_INTERVAL_MINUTES", 2u64)?),
        };
        let config = Config {
            database_url: env.text("DATABASE_URL").map(SecretString::from),
            database_url_parameter: env.text("DATABASE_URL_PARAMETER"),
            database_ca_file: env.text("DATABASE_CA_FILE"),
            database_pool_size: env.parsed("DATABASE_POOL_SIZE", 8)?,
            database_timeout: env.duration_or("DATABASE_TIMEOUT", Duration::from_secs(5))?,
            webhook_url: env.url("WEBHOOK_URL")?,
            webhook_auth_key: env.text("WEBHOOK_AUTH_KEY").map(SecretString::from),
            webhook_auth_key_parameter: env.text("WEBHOOK_AUTH_KEY_PARAMETER"),
            webhook_auth_header: env
                .text("WEBHOOK_AUTH_HEADER")
                .unwrap_or_else(|| DEFAULT_AUTH_HEADER.to_owned()),
            webhook_timeout: env.duration_or("WEBHOOK_TIMEOUT", Duration::from_secs(10))?,
            server_host: env
                .text("SERVER_HOST")
                .unwrap_or_else(|| "127.0.0.1".to_owned()),
            server_port: env.parsed("SERVER_PORT", 8080)?,
            scheduler_interval,
            batch_size: env.parsed("MESSAGE_BATCH_SIZE", 2)?,
            scheduler_autostart: env.parsed("SCHEDULER_AUTOSTART", true)?,
            lease_duration: env.duration_or("LEASE_DURATION", Duration::from_secs(60))?,
            max_attempts: env.parsed("MAX_ATTEMPTS", 5)?,
            retry_base_delay: env.duration_or("RETRY_BASE_DELAY", Duration::from_secs(30))?,
            retry_max_delay: env.duration_or("RETRY_MAX_DELAY", Duration::from_secs(3600))?,
            schedule_name: env.text("SCHEDULE_NAME"),
            schedule_group: env
                .text("SCHEDULE_GROUP")
                .unwrap_or_else(|| "default".to_owned()),
        };

        config.check()?;
        Ok(config)
    }

    /// Rejects combinations that would run but misbehave.
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |variable, reason: &str| {
            Err(ConfigError {
                variable,
                reason: reason.to_owned(),
            })
        };
        if self.scheduler_interval.is_zero() {
            return invalid("SCHEDULER_INTERVAL", "must be longer than zero");
        }
        if !(1..=500).contains(&self.batch_size) {
            return invalid("MESSAGE_BATCH_SIZE", "must be between 1 and 500");
        }
        if self.max_attempts == 0 {
            return invalid("MAX_ATTEMPTS", "must be at least 1");
        }
        if self.webhook_timeout.is_zero() {
            return invalid("WEBHOOK_TIMEOUT", "must be longer than zero");
        }
        // A lease shorter than one webhook call would let a second dispatcher claim a
        // message whose first send is still in flight.
        if self.lease_duration <= self.webhook_timeout {
            return invalid("LEASE_DURATION", "must be longer than WEBHOOK_TIMEOUT");
        }
        if self.retry_max_delay < self.retry_base_delay {
            return invalid(
                "RETRY_MAX_DELAY",
                "must not be shorter than RETRY_BASE_DELAY",
            );
        }
        if self.database_pool_size == 0 {
            return invalid("DATABASE_POOL_SIZE", "must be at least 1");
        }
        axum::http::HeaderName::from_bytes(self.webhook_auth_header.as_bytes()).map_or_else(
            |_| invalid("WEBHOOK_AUTH_HEADER", "is not a valid HTTP header name"),
            |_| Ok(()),
        )
    }
}

/// Typed reads of single variables, each error naming its variable.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The variable's value; an empty value counts as unset.
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|err| ConfigError {
                variable: name,
                reason: format!("cannot use {raw:?}: {err}"),
            }),
        }
    }

    fn duration(&self, name: &'static str) -> Result<Option<Duration>, ConfigError> {
        self.text(name)
            .map(|raw| {
                humantime::parse_duration(raw.trim()).map_err(|err| ConfigError {
                    variable: name,
                    reason: format!("cannot use {raw:?} as a duration such as 30s or 2m: {err}"),
                })
            })
            .transpose()
    }

    fn duration_or(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(self.duration(name)?.unwrap_or(default))
    }

    fn url(&self, name: &'static str) -> Result<Option<Url>, ConfigError> {
        let Some(raw) = self.text(name) else {
            return Ok(None);
        };
        let url = Url::parse(raw.trim()).map_err(|err| ConfigError {
            variable: name,
            reason: format!("cannot use {raw:?} as a URL: {err}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError {
                variable: name,
                reason: "must be an http or https URL".to_owned(),
            });
        }
        Ok(Some(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn an_empty_environment_gives_the_documented_defaults() {
        let config = config_from(&[]).expect("defaults are valid");

        assert_eq!(config.scheduler_interval, Duration::from_secs(120));
        assert_eq!(config.batch_size, 2);
        assert_eq!(config.server_port, 8080);
        assert!(config.scheduler_autostart);
        assert_eq!(config.webhook_auth_header, "x-ins-auth-key");
        assert!(config.database_url.is_none());
    }

    #[test]
    fn scheduler_interval_takes_durations_and_wins_over_minutes() {
        let config = config_from(&[
            ("SCHEDULER_INTERVAL", "500ms"),
            ("SCHEDULER_INTERVAL_MINUTES", "7"),
        ])
        .expect("valid");
        assert_eq!(config.scheduler_interval, Duration::from_millis(500));

        let config = config_from(&[("SCHEDULER_INTERVAL_MINUTES", "7")]).expect("valid");
        assert_eq!(config.scheduler_interval, Duration::from_secs(420));
    }

    #[test]
    fn a_malformed_value_names_its_variable() {
        let err = config_from(&[("MESSAGE_BATCH_SIZE", "two")]).expect_err("malformed");
        assert_eq!(err.variable, "MESSAGE_BATCH_SIZE");

        let err = config_from(&[("SCHEDULER_INTERVAL", "soon")]).expect_err("malformed");
        assert_eq!(err.variable, "SCHEDULER_INTERVAL");
        assert!(err.to_string().starts_with("SCHEDULER_INTERVAL: "));

        let err = config_from(&[("WEBHOOK_URL", "ftp://example.test")]).expect_err("bad scheme");
        assert_eq!(err.variable, "WEBHOOK_URL");
    }

    #[test]
    fn a_lease_no_longer_than_the_webhook_timeout_is_refused() {
        let err = config_from(&[("WEBHOOK_TIMEOUT", "30s"), ("LEASE_DURATION", "30s")])
            .expect_err("lease too short");
        assert_eq!(err.variable, "LEASE_DURATION");
    }

    #[test]
    fn secrets_do_not_print() {
        let config = config_from(&[
            ("WEBHOOK_AUTH_KEY", "very-secret-key"),
            ("DATABASE_URL", "postgres://u:hunter2@db/q"),
        ])
        .expect("valid");
        let printed = format!("{config:?}");
        assert!(!printed.contains("very-secret-key"));
        assert!(!printed.contains("hunter2"));
    }
}
