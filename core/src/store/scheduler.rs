//! The scheduler's running/stopped state, shared through the database by every instance.

use super::{Store, StoreError};

impl Store {
    /// Records `running` unless a state is already recorded: a fresh database starts as
    /// configured, and a stop survives restarts.
    pub async fn init_scheduler(&self, running: bool) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.execute(
            "INSERT INTO scheduler (running) VALUES ($1) ON CONFLICT (singleton) DO NOTHING",
            &[&running],
        )
        .await?;
        Ok(())
    }

    /// Whether dispatching runs; a database with no recorded state counts as stopped.
    pub async fn scheduler_running(&self) -> Result<bool, StoreError> {
        let conn = self.conn().await?;
        let row = conn.query_opt("SELECT running FROM scheduler", &[]).await?;
        Ok(row.is_some_and(|row| row.get("running")))
    }

    pub async fn set_scheduler_running(&self, running: bool) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.execute(
            "INSERT INTO scheduler (running) VALUES ($1) \
             ON CONFLICT (singleton) DO UPDATE \
             SET running = EXCLUDED.running, updated_at = now() \
             WHERE scheduler.running IS DISTINCT FROM EXCLUDED.running",
            &[&running],
        )
        .await?;
        Ok(())
    }
}
