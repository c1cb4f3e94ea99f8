//! The AWS scheduler state: the EventBridge Scheduler schedule that invokes the dispatch
//! function, enabled to run and disabled to pause.
//!
//! `UpdateSchedule` replaces the whole schedule, and any field left out is reset. So a change
//! of state reads the schedule first and writes every field back as it was, changing only
//! the state.

use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::types::{
    FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState as AwsState,
};

use super::{ScheduleControl, ScheduleError, ScheduleState};

/// Which schedule: its name and group.
#[derive(Debug, Clone)]
pub struct ScheduleId {
    pub name: String,
    pub group: String,
}

pub struct EventBridgeSchedule {
    client: Client,
    id: ScheduleId,
}

impl EventBridgeSchedule {
    pub fn new(client: Client, id: ScheduleId) -> Self {
        Self { client, id }
    }

    /// A client from the standard AWS environment (credentials, region, and
    /// `AWS_ENDPOINT_URL` for a local emulator).
    pub async fn from_env(id: ScheduleId) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(Client::new(&config), id)
    }

    async fn read(&self) -> Result<GetScheduleOutput, ScheduleError> {
        self.client
            .get_schedule()
            .name(&self.id.name)
            .group_name(&self.id.group)
            .send()
            .await
            .map_err(|err| self.error("reading", err))
    }

    async fn set(&self, wanted: AwsState) -> Result<ScheduleState, ScheduleError> {
        let current = self.read().await?;
        if current.state() == Some(&wanted) {
            return Ok(state_of(&wanted));
        }

        // A window in mode OFF must be sent without window minutes, or the call is refused.
        let window = current
            .flexible_time_window()
            .map(|window| {
                let minutes = match window.mode() {
                    FlexibleTimeWindowMode::Off => None,
                    _ => window.maximum_window_in_minutes(),
                };
                FlexibleTimeWindow::builder()
                    .mode(window.mode().clone())
                    .set_maximum_window_in_minutes(minutes)
                    .build()
            })
            .transpose()
            .map_err(|err| ScheduleError::Misconfigured(err.to_string()))?;

        self.client
            .update_schedule()
            .name(&self.id.name)
            .group_name(&self.id.group)
            .set_schedule_expression(current.schedule_expression().map(str::to_owned))
            .set_schedule_expression_timezone(
                current.schedule_expression_timezone().map(str::to_owned),
            )
            .set_start_date(current.start_date().cloned())
            .set_end_date(current.end_date().cloned())
            .set_description(current.description().map(str::to_owned))
            .set_kms_key_arn(current.kms_key_arn().map(str::to_owned))
            .set_target(current.target().cloned())
            .set_flexible_time_window(window)
            .set_action_after_completion(current.action_after_completion().cloned())
            .state(wanted.clone())
            .send()
            .await
            .map_err(|err| self.error("updating", err))?;

        tracing::info!(
            schedule.name = %self.id.name,
            schedule.state = wanted.as_str(),
            "schedule state set"
        );
        Ok(state_of(&wanted))
    }

    fn error<E, R>(&self, doing: &str, err: SdkError<E, R>) -> ScheduleError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let text = format!(
            "{doing} schedule {}/{}: {}",
            self.id.group,
            self.id.name,
            DisplayErrorContext(&err)
        );
        // A missing schedule or a refused permission will not mend by itself.
        let code = err
            .as_service_error()
            .and_then(|err| err.code())
            .unwrap_or("");
        match code {
            "ResourceNotFoundException" | "AccessDeniedException" | "ValidationException" => {
                ScheduleError::Misconfigured(text)
            }
            _ => ScheduleError::Unavailable(text),
        }
    }
}

fn state_of(state: &AwsState) -> ScheduleState {
    match state {
        AwsState::Enabled => ScheduleState::Running,
        _ => ScheduleState::Stopped,
    }
}

#[async_trait::async_trait]
impl ScheduleControl for EventBridgeSchedule {
    async fn start(&self) -> Result<ScheduleState, ScheduleError> {
        self.set(AwsState::Enabled).await
    }

    async fn stop(&self) -> Result<ScheduleState, ScheduleError> {
        self.set(AwsState::Disabled).await
    }

    async fn state(&self) -> Result<ScheduleState, ScheduleError> {
        let current = self.read().await?;
        Ok(current.state().map_or(ScheduleState::Stopped, state_of))
    }
}
