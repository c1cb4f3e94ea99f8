//! Starting and stopping dispatch.
//!
//! [`ScheduleControl`] is the one interface the HTTP API uses. Locally the state lives in the
//! database ([`DatabaseSchedule`]) and every runner's tick loop reads it; on AWS it is the
//! EventBridge Scheduler schedule that invokes the dispatch function ([`EventBridgeSchedule`]).

mod database;
mod eventbridge;

use serde::Serialize;

pub use database::DatabaseSchedule;
pub use eventbridge::{EventBridgeSchedule, ScheduleId};

/// Whether dispatch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleState {
    Running,
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The state could not be read or written now; trying again later may work.
    #[error("the schedule is unavailable: {0}")]
    Unavailable(String),
    /// The schedule is missing or misconfigured; a person must act.
    #[error("the schedule cannot be used: {0}")]
    Misconfigured(String),
}

impl From<crate::store::StoreError> for ScheduleError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

#[async_trait::async_trait]
pub trait ScheduleControl: Send + Sync {
    /// Makes dispatch run; a no-op when it already does.
    async fn start(&self) -> Result<ScheduleState, ScheduleError>;
    /// Makes dispatch pause; a no-op when it already is paused.
    async fn stop(&self) -> Result<ScheduleState, ScheduleError>;
    async fn state(&self) -> Result<ScheduleState, ScheduleError>;
}
