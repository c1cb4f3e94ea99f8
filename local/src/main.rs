//! `qubit-local`: Qubit's HTTP API and dispatcher in one process. See the README.

use std::process::ExitCode;

use qubit_core::config::Config;
use qubit_core::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init(LogFormat::Text);

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("qubit-local: configuration error: {err}");
            return ExitCode::from(2);
        }
    };

    match qubit_local::runner::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("qubit-local: {err:#}");
            ExitCode::FAILURE
        }
    }
}
