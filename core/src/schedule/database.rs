//! The local scheduler state: a row in the database that every runner's tick loop reads.

use std::sync::Arc;

use tokio::sync::Notify;

use super::{ScheduleControl, ScheduleError, ScheduleState};
use crate::store::Store;

pub struct DatabaseSchedule {
    store: Store,
    /// Wakes this instance's tick loop, so a start here sends its first batch at once.
    wake: Arc<Notify>,
}

impl DatabaseSchedule {
    pub fn new(store: Store, wake: Arc<Notify>) -> Self {
        Self { store, wake }
    }

    async fn set(&self, running: bool) -> Result<ScheduleState, ScheduleError> {
        self.store.set_scheduler_running(running).await?;
        self.wake.notify_one();
        tracing::info!(schedule.running = running, "scheduler state set");
        Ok(state_of(running))
    }
}

fn state_of(running: bool) -> ScheduleState {
    if running {
        ScheduleState::Running
    } else {
        ScheduleState::Stopped
    }
}

#[async_trait::async_trait]
impl ScheduleControl for DatabaseSchedule {
    async fn start(&self) -> Result<ScheduleState, ScheduleError> {
        self.set(true).await
    }

    async fn stop(&self) -> Result<ScheduleState, ScheduleError> {
        self.set(false).await
    }

    async fn state(&self) -> Result<ScheduleState, ScheduleError> {
        Ok(state_of(self.store.scheduler_running().await?))
    }
}
