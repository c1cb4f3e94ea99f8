//! `webhook-sink`: the webhook test service on its own. See `qubit_local::sink`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use qubit_core::telemetry::{self, LogFormat};
use qubit_local::sink::{Behaviour, Sink, SinkSettings};

/// A webhook receiver that answers like the real provider and records what it got.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SINK_ADDR", default_value = "127.0.0.1:9090")]
    addr: SocketAddr,
    /// Answer 401 to requests without this key in the auth header.
    #[arg(long, env = "WEBHOOK_AUTH_KEY", hide_env_values = true)]
    auth_key: Option<String>,
    /// The auth header's name.
    #[arg(long, env = "WEBHOOK_AUTH_HEADER", default_value = "x-ins-auth-key")]
    auth_header: String,
    /// Share of requests (0 to 1) answered with --fail-status.
    #[arg(long, env = "SINK_FAIL_RATE", default_value_t = 0.0)]
    fail_rate: f64,
    /// Status for failed requests.
    #[arg(long, env = "SINK_FAIL_STATUS", default_value_t = 500)]
    fail_status: u16,
    /// Share of requests (0 to 1) held for --delay, then answered 503.
    #[arg(long, env = "SINK_SLOW_RATE", default_value_t = 0.0)]
    slow_rate: f64,
    /// How long a slow request is held, such as 15s.
    #[arg(long, env = "SINK_DELAY", value_parser = humantime::parse_duration, default_value = "0s")]
    delay: Duration,
    /// Append every request as a JSON line to this file.
    #[arg(long, env = "SINK_LOG")]
    log: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(LogFormat::Text);
    let args = Args::parse();

    let sink = Sink::new(SinkSettings {
        auth_header: args.auth_header,
        auth_key: args.auth_key,
        behaviour: Behaviour {
            fail_rate: args.fail_rate,
            fail_status: args.fail_status,
            slow_rate: args.slow_rate,
            delay: args.delay,
        },
        log: args.log,
    });
    // Ctrl-C or SIGTERM (a container's stop) ends it.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    let (bound, task) = sink.serve(args.addr, shutdown).await?;
    println!("webhook-sink listening on http://{bound} (POST any path; GET /received)");

    task.await?;
    Ok(())
}
