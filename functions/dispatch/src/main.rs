//! `dispatch`: one dispatch batch per invocation, exactly the local runner's tick.
//!
//! EventBridge Scheduler passes its target's input verbatim, so any JSON payload is accepted
//! and ignored: a scheduled event, `{}`, or custom input. Two invocations at once never send
//! one message twice; the claim in the database sees to that.
//!
//! The result counts what the batch did. An error is returned only when no message could be
//! claimed (the database is unreachable): then Lambda's and the schedule's retries are right
//! to run the invocation again, and nothing was sent that a retry could repeat. A failed
//! delivery is not an error here: it is recorded and retried by the queue itself.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use qubit_core::app::App;
use qubit_core::dispatch::BatchReport;
use qubit_core::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(LogFormat::Json);

    let app = App::from_lambda_env().await.inspect_err(|err| {
        tracing::error!(error.message = %err, "cold start failed");
    })?;
    let dispatcher = &app.dispatcher;

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            tracing::debug!(request.id = %event.context.request_id, "dispatch invoked");
            let report: BatchReport = dispatcher.run_batch().await?;
            Ok::<BatchReport, Error>(report)
        },
    ))
    .await
}
