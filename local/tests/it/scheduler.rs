//! Start and stop: idempotent, prompt, and shared by every instance on one database.

use std::time::Duration;

use crate::common::{TestApp, TestSink, eventually, settings};

#[tokio::test]
async fn start_and_stop_are_idempotent_and_report_the_schedule() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[("SCHEDULER_INTERVAL", "2m")])).await;

    let (status, state) = app.get("/api/v1/scheduler").await;
    assert_eq!(status, 200);
    assert_eq!(state["state"], "stopped");
    assert_eq!(state["interval_seconds"], 120.0);
    assert_eq!(state["batch_size"], 2);

    for _ in 0..2 {
        let (status, state) = app.post_empty("/api/v1/scheduler/start").await;
        assert_eq!(status, 200);
        assert_eq!(state["state"], "running");
    }
    for _ in 0..2 {
        let (status, state) = app.post_empty("/api/v1/scheduler/stop").await;
        assert_eq!(status, 200);
        assert_eq!(state["state"], "stopped");
    }
    let (_, state) = app.get("/api/v1/scheduler").await;
    assert_eq!(state["state"], "stopped");
}

#[tokio::test]
async fn a_start_sends_the_first_batch_at_once_then_one_per_interval() {
    let sink = TestSink::start().await;
    let mut app = TestApp::spawn(&sink.url, settings(&[("SCHEDULER_INTERVAL", "1h")])).await;
    app.start_ticks();
    for n in 0..3 {
        app.create(&format!("queued {n}")).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(sink.sink.received().is_empty(), "sent while stopped");

    app.post_empty("/api/v1/scheduler/start").await;

    let first_batch = eventually(Duration::from_secs(1), || async {
        sink.sink.received().len() == 2
    })
    .await;
    assert!(
        first_batch,
        "the first batch did not go out within a second"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink.sink.received().len(),
        2,
        "a second batch came before the interval"
    );
}

#[tokio::test]
async fn stop_on_one_instance_stops_another_that_shares_the_database() {
    let sink = TestSink::start().await;
    let env = || settings(&[("SCHEDULER_INTERVAL", "200ms")]);
    let mut one = TestApp::spawn(&sink.url, env()).await;
    let mut other = TestApp::on(&one.database_url, &sink.url, env()).await;
    one.start_ticks();
    other.start_ticks();
    one.post_empty("/api/v1/scheduler/start").await;
    one.create("while running").await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            sink.sink.received().len() == 1
        })
        .await,
        "nothing was sent while running"
    );

    let (status, _) = one.post_empty("/api/v1/scheduler/stop").await;
    assert_eq!(status, 200);
    // Let each loop see the stop; a batch already under way may finish.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let id = other.create("while stopped").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(
        sink.sink.received().len(),
        1,
        "an instance sent after the stop"
    );
    let (_, state) = other.get("/api/v1/scheduler").await;
    assert_eq!(state["state"], "stopped");

    other.post_empty("/api/v1/scheduler/start").await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            sink.sink.received().len() == 2
        })
        .await,
        "the message was not sent after the start"
    );
    assert_eq!(one.message(&id).await["status"], "sent");
}

#[tokio::test]
async fn a_fresh_database_starts_as_scheduler_autostart_says_and_a_stop_survives_restarts() {
    let sink = TestSink::start().await;
    let autostart = settings(&[("SCHEDULER_AUTOSTART", "true")]);
    let app = TestApp::spawn(&sink.url, autostart.clone()).await;
    let (_, state) = app.get("/api/v1/scheduler").await;
    assert_eq!(state["state"], "running");

    app.post_empty("/api/v1/scheduler/stop").await;
    let restarted = TestApp::on(&app.database_url, &sink.url, autostart).await;

    let (_, state) = restarted.get("/api/v1/scheduler").await;
    assert_eq!(state["state"], "stopped");
}
