//! The PostgreSQL store: a connection pool, the migrations, and every query Qubit makes.
//!
//! Queries live in submodules by what they touch: [`messages`] for the API's reads and
//! writes, [`claims`] for the dispatcher's claim-and-record cycle, [`scheduler`] for the
//! shared running/stopped state.

mod claims;
mod connect;
mod messages;
mod scheduler;

use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError};
use secrecy::{ExposeSecret, SecretString};

pub use claims::{AttemptRecord, Claim, Outcome};
pub use messages::{Attempt, Cursor, InvalidCursor, Page, StatusFilter, Transition};

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// An arbitrary constant that names Qubit's migration lock among PostgreSQL advisory locks.
const MIGRATION_LOCK_KEY: i64 = 0x5155_4249_545f_4d31;

/// What can go wrong talking to PostgreSQL, split by what a caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time; worth trying again later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error that retrying will not fix.
    #[error("a database query failed")]
    Query(#[source] tokio_postgres::Error),
    #[error("applying the database migrations failed")]
    Migration(#[source] refinery::Error),
    #[error("the database settings are unusable: {0}")]
    Config(String),
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        let Some(db) = err.as_db_error() else {
            // No server error: the connection broke, closed or timed out.
            return Self::Unavailable(describe(&err));
        };
        let code = db.code().code();

        // 08: connection exceptions; 53: out of resources (too many connections);
        // 57P0x: the server is shutting down or starting; 57014: statement_timeout.
        if code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") {
            Self::Unavailable(db.message().to_owned())
        } else if code == "57014" {
            Self::Unavailable("the query timed out".to_owned())
        } else {
            Self::Query(err)
        }
    }
}

/// A PostgreSQL error with its cause: the error's own text is often just "db error".
fn describe(err: &tokio_postgres::Error) -> String {
    match (err.as_db_error(), std::error::Error::source(err)) {
        (Some(db), _) => format!("{} ({})", db.message(), db.code().code()),
        (None, Some(cause)) => format!("{err}: {cause}"),
        (None, None) => err.to_string(),
    }
}

impl From<PoolError> for StoreError {
    fn from(err: PoolError) -> Self {
        // Taking a connection runs no query of ours: whatever failed (connecting,
        // authenticating, a database that is gone) means the database is unavailable.
        Self::Unavailable(match err {
            PoolError::Backend(err) => describe(&err),
            other => other.to_string(),
        })
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub url: SecretString,
    /// Extra root certificates (a PEM bundle) trusted for the server's TLS certificate.
    pub ca_file: Option<String>,
    pub pool_size: usize,
    /// Bounds connecting, waiting for a pooled connection, and each statement.
    pub timeout: Duration,
}

impl StoreSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            ca_file: None,
            pool_size: 8,
            timeout: Duration::from_secs(5),
        }
    }
}

/// A handle on the database, cheap to clone and shared by the API and the dispatcher.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Builds the pool. Connections are made on first use, so this succeeds while the
    /// database is down and the API can answer 503 until it is back.
    pub fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        let pool = connect::pool(settings)?;
        Ok(Self { pool })
    }

    /// Applies pending migrations under a PostgreSQL advisory lock, so instances starting
    /// together take turns and the later ones find nothing left to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        // Waiting for another instance's migrations, or running a long one, must not trip
        // the statement timeout meant for requests.
        conn.batch_execute("SET statement_timeout = 0").await?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;

        let client: &mut tokio_postgres::Client = &mut conn;
        let report = embedded::migrations::runner()
            .run_async(client)
            .await
            .map_err(StoreError::Migration);

        // Unlock even after a failure: the lock is per session and the connection is reused.
        conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
            .await?;
        conn.batch_execute("RESET statement_timeout").await?;

        for migration in report?.applied_migrations() {
            tracing::info!(migration.name = %migration, "applied migration");
        }
        Ok(())
    }

    /// Answers whether the database takes queries.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn conn(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

/// The URL with its password hidden, for logs.
pub fn redacted_url(url: &SecretString) -> String {
    match reqwest::Url::parse(url.expose_secret()) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}
