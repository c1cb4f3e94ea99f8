//! `/api/v1/scheduler`: start, stop and read the dispatch schedule.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use crate::schedule::ScheduleState;

#[derive(Debug, Serialize)]
pub struct SchedulerOut {
    state: ScheduleState,
    interval_seconds: f64,
    batch_size: u32,
}

fn answer(state: &AppState, schedule: ScheduleState) -> Json<SchedulerOut> {
    Json(SchedulerOut {
        state: schedule,
        interval_seconds: state.interval.as_secs_f64(),
        batch_size: state.batch_size,
    })
}

pub async fn get(State(state): State<AppState>) -> Result<Json<SchedulerOut>, ApiError> {
    let schedule = state.schedule.state().await?;
    Ok(answer(&state, schedule))
}

pub async fn start(State(state): State<AppState>) -> Result<Json<SchedulerOut>, ApiError> {
    let schedule = state.schedule.start().await?;
    Ok(answer(&state, schedule))
}

pub async fn stop(State(state): State<AppState>) -> Result<Json<SchedulerOut>, ApiError> {
    let schedule = state.schedule.stop().await?;
    Ok(answer(&state, schedule))
}
