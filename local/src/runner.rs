//! The local runner: the HTTP API plus the tick loop, in one process.
//!
//! With `DATABASE_URL` unset it starts a private PostgreSQL; with `WEBHOOK_URL` unset it
//! starts the webhook test service in-process. On SIGTERM or Ctrl-C it stops taking
//! requests and claims, lets the batch in flight finish and be recorded, stops what it
//! started, and returns.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use qubit_core::app::App;
use qubit_core::config::Config;
use qubit_core::dispatch::run_ticks;
use qubit_core::schedule::ScheduleState;
use qubit_core::store::redacted_url;
use qubit_core::webhook::display_url;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::embedded_postgres::EmbeddedPostgres;
use crate::sink::{Sink, SinkSettings};

/// Runs until a shutdown signal, then cleans up.
pub async fn run(config: Config) -> Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let embedded = match &config.database_url {
        Some(_) => None,
        None => {
            let home = std::env::var_os("QUBIT_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".qubit"));
            Some(EmbeddedPostgres::start(&home).await?)
        }
    };

    let served = serve(&config, embedded.as_ref(), shutdown.clone()).await;

    // The private database goes down last, after every outcome is recorded.
    if let Some(postgres) = embedded
        && let Err(err) = postgres.stop().await
    {
        tracing::error!(error.message = %format!("{err:#}"), "embedded PostgreSQL did not stop");
    }
    served
}

/// How long requests still open at shutdown may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

async fn serve(
    config: &Config,
    embedded: Option<&EmbeddedPostgres>,
    shutdown: CancellationToken,
) -> Result<()> {
    let database_url = match (&config.database_url, embedded) {
        (Some(url), _) => url.clone(),
        (None, Some(postgres)) => SecretString::from(postgres.url()),
        (None, None) => anyhow::bail!("no database: DATABASE_URL is unset"),
    };

    let (webhook_url, built_in_sink) = match &config.webhook_url {
        Some(url) => (url.clone(), false),
        None => (start_sink(config, shutdown.clone()).await?, true),
    };

    let app = App::build(config, database_url.clone(), webhook_url.clone())
        .await
        .context("cannot start Qubit")?;

    let addr: SocketAddr = format!("{}:{}", config.server_host, config.server_port)
        .parse()
        .with_context(|| format!("SERVER_HOST {} is not an IP address", config.server_host))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;

    tracing::info!(
        database.url = %redacted_url(&database_url),
        webhook.url = %display_url(&webhook_url),
        scheduler.interval_ms = config.scheduler_interval.as_millis() as u64,
        batch.size = config.batch_size,
        "Qubit is ready"
    );
    println!("Qubit API listening on http://{bound}");
    println!("Sending messages to {}", display_url(&webhook_url));
    if built_in_sink {
        let mut received = webhook_url.clone();
        received.set_path("/received");
        println!("The built-in receiver lists what it got at {received}");
    }
    // The state is shared and kept across restarts, so say which it is.
    match app.state.schedule.state().await {
        Ok(ScheduleState::Running) => println!(
            "Dispatch is running: {} message(s) every {}",
            config.batch_size,
            humantime::format_duration(config.scheduler_interval)
        ),
        Ok(ScheduleState::Stopped) => println!(
            "Dispatch is stopped (it was stopped earlier); resume it with \
             curl -X POST http://{bound}/api/v1/scheduler/start"
        ),
        Err(err) => tracing::warn!(error.message = %err, "cannot read the scheduler state"),
    }

    let ticks = tokio::spawn(run_ticks(
        app.dispatcher.clone(),
        app.store.clone(),
        config.scheduler_interval,
        app.wake.clone(),
        shutdown.clone().cancelled_owned(),
    ));

    let server = axum::serve(listener, qubit_core::http::router(app.state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server.into_future() => served.context("the HTTP server failed")?,
        _ = grace => tracing::warn!("requests still open after the grace period; closing them"),
    }

    // A batch in flight ends within one webhook timeout plus the time to record it.
    let finish_within =
        config.webhook_timeout + config.database_timeout * 2 + Duration::from_secs(5);
    if tokio::time::timeout(finish_within, ticks).await.is_err() {
        tracing::warn!("the batch in flight did not finish in time; its leases will expire");
    }
    Ok(())
}

/// Starts the webhook test service in this process and returns its URL.
async fn start_sink(config: &Config, shutdown: CancellationToken) -> Result<reqwest::Url> {
    let sink = Sink::new(SinkSettings {
        auth_header: config.webhook_auth_header.clone(),
        auth_key: config
            .webhook_auth_key
            .as_ref()
            .map(|key| key.expose_secret().to_owned()),
        ..SinkSettings::default()
    });
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let (bound, _) = sink
        .serve(loopback, shutdown.cancelled_owned())
        .await
        .context("cannot start the built-in webhook test service")?;

    let url = format!("http://{bound}/webhook");
    tracing::info!(webhook.url = %url, "WEBHOOK_URL is unset: using the built-in test receiver");
    Ok(url.parse()?)
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(err) => {
                tracing::error!(error.message = %err, "cannot watch SIGTERM");
                let _ = interrupt.await;
                shutdown.cancel();
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing the batch in flight");
    shutdown.cancel();
}
