//! Dispatch against a real database and real receivers: exactly-once under concurrency,
//! leases, fencing, failures, retries and what the client refuses to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use qubit_core::message::{Content, NewMessage, PhoneNumber};
use qubit_core::store::{AttemptRecord, Outcome};
use qubit_local::sink::Behaviour;
use reqwest::Url;

use crate::common::{TestApp, TestSink, settings};

/// A receiver that gives every request the same answer and counts them.
async fn fixed_receiver(
    status: u16,
    headers: &[(&'static str, &'static str)],
    body: &'static str,
) -> (Url, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let mut answer_headers = HeaderMap::new();
    for (name, value) in headers {
        answer_headers.insert(*name, HeaderValue::from_static(value));
    }
    let router = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        let headers = answer_headers.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (StatusCode::from_u16(status).expect("valid"), headers, body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}/hook", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url.parse().expect("a URL"), hits)
}

fn new_message(content: &str) -> NewMessage {
    NewMessage {
        phone_number: PhoneNumber::parse("+905321234567").expect("valid"),
        content: Content::parse(content.to_owned()).expect("valid"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_dispatchers_on_one_database_deliver_2000_messages_exactly_once() {
    let sink = TestSink::start().await;
    let first = TestApp::spawn(&sink.url, settings(&[("MESSAGE_BATCH_SIZE", "5")])).await;
    for n in 0..2000 {
        first
            .store
            .insert_message(&new_message(&format!("message {n}")))
            .await
            .expect("stored");
    }
    let mut instances = vec![first];
    for _ in 1..8 {
        let env = settings(&[("MESSAGE_BATCH_SIZE", "5")]);
        instances.push(TestApp::on(&instances[0].database_url, &sink.url, env).await);
    }

    let drains = instances.iter().map(|instance| {
        let dispatcher = instance.dispatcher.clone();
        tokio::spawn(async move {
            loop {
                let report = dispatcher.run_batch().await.expect("a batch runs");
                if report.claimed == 0 && report.left == Some(0) {
                    break;
                }
            }
        })
    });
    for drain in futures::future::join_all(drains).await {
        drain.expect("a dispatcher finished");
    }

    let received = sink.sink.received();
    assert_eq!(received.len(), 2000);
    let mut keys: Vec<String> = received
        .iter()
        .map(|r| r.idempotency_key.clone().expect("an Idempotency-Key"))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 2000, "a message was sent twice");
    let (_, sent) = instances[0].get("/api/v1/messages?limit=500").await;
    assert_eq!(sent["data"].as_array().map(Vec::len), Some(500));
    assert_eq!(instances[0].store.count_pending().await.expect("counts"), 0);
    for message in sent["data"].as_array().expect("a list") {
        let id = message["id"].as_str().expect("an id");
        let record = received
            .iter()
            .find(|r| r.idempotency_key.as_deref() == Some(id))
            .expect("received");
        assert_eq!(message["message_id"].as_str(), record.message_id.as_deref());
    }
}

#[tokio::test]
async fn messages_of_a_dispatcher_killed_after_claiming_are_sent_once_its_lease_ends() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[])).await;
    let a = app.create("first").await;
    let b = app.create("second").await;

    // The claim commits, then its holder dies without sending anything.
    let dead = app
        .store
        .claim_batch(2, Duration::from_millis(800))
        .await
        .expect("claims");
    assert_eq!(dead.len(), 2);

    let report = app.dispatcher.run_batch().await.expect("a batch runs");
    assert_eq!(report.claimed, 0, "leased messages were claimed again");

    tokio::time::sleep(Duration::from_millis(900)).await;
    let report = app.dispatcher.run_batch().await.expect("a batch runs");
    assert_eq!(report.sent, 2);
    assert_eq!(sink.sink.received().len(), 2);
    for id in [a, b] {
        assert_eq!(app.message(&id).await["status"], "sent");
    }
}

#[tokio::test]
async fn a_sender_whose_lease_ran_out_cannot_overwrite_the_newer_claims_outcome() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[])).await;
    let id = app.create("contested").await;
    let stale = app
        .store
        .claim_batch(1, Duration::from_millis(300))
        .await
        .expect("claims")
        .remove(0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    app.dispatcher
        .run_batch()
        .await
        .expect("the newer claim sends");
    let sent = app.message(&id).await;

    let attempt = AttemptRecord {
        started_at: chrono::Utc::now(),
        duration: Duration::from_millis(5),
        http_status: Some(500),
        error_kind: Some("http_status"),
        error: Some("late failure".to_owned()),
        response_excerpt: None,
    };
    let recorded = app
        .store
        .record_outcome(&stale, &Outcome::GiveUp, &attempt)
        .await
        .expect("the store answers");

    assert!(!recorded, "a stale claim recorded its outcome");
    let after = app.message(&id).await;
    assert_eq!(after, sent);
    assert_eq!(after["status"], "sent");
}

#[tokio::test]
async fn a_failing_receiver_leaves_the_message_pending_with_its_attempt_and_error() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[])).await;
    let id = app.create("try me").await;
    sink.sink.set_behaviour(Behaviour {
        fail_rate: 1.0,
        fail_status: 500,
        ..Behaviour::default()
    });

    let report = app.dispatcher.run_batch().await.expect("a batch runs");

    assert_eq!(report.failed, 1);
    let message = app.message(&id).await;
    assert_eq!(message["status"], "pending");
    assert_eq!(message["attempts"], 1);
    assert!(
        message["last_error"]
            .as_str()
            .expect("an error")
            .contains("500")
    );
    let (status, attempts) = app.get(&format!("/api/v1/messages/{id}/attempts")).await;
    assert_eq!(status, 200);
    assert_eq!(attempts["data"][0]["http_status"], 500);
    assert_eq!(attempts["data"][0]["outcome"], "failed");
    assert_eq!(attempts["data"][0]["error_kind"], "http_status");

    sink.sink.set_behaviour(Behaviour::default());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = app.dispatcher.run_batch().await.expect("a batch runs");

    assert_eq!(report.sent, 1);
    let message = app.message(&id).await;
    assert_eq!(message["status"], "sent");
    assert_eq!(message["attempts"], 2);
    assert!(message["last_error"].is_null());
    let received = sink.sink.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].idempotency_key, received[1].idempotency_key);
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_counts_as_a_failed_attempt() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[("WEBHOOK_TIMEOUT", "300ms")])).await;
    let id = app.create("slow").await;
    sink.sink.set_behaviour(Behaviour {
        slow_rate: 1.0,
        delay: Duration::from_secs(2),
        ..Behaviour::default()
    });

    let started = std::time::Instant::now();
    app.dispatcher.run_batch().await.expect("a batch runs");

    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the timeout did not bite"
    );
    let message = app.message(&id).await;
    assert_eq!(message["status"], "pending");
    assert_eq!(message["attempts"], 1);
    let (_, attempts) = app.get(&format!("/api/v1/messages/{id}/attempts")).await;
    assert_eq!(attempts["data"][0]["error_kind"], "timeout");

    sink.sink.set_behaviour(Behaviour::default());
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.dispatcher.run_batch().await.expect("a batch runs");
    assert_eq!(app.message(&id).await["status"], "sent");
}

#[tokio::test]
async fn after_max_attempts_a_message_fails_and_is_not_sent_again_until_retried() {
    let (url, hits) = fixed_receiver(403, &[], r#"{"error":"forbidden"}"#).await;
    let app = TestApp::spawn(&url, settings(&[("MAX_ATTEMPTS", "3")])).await;
    let id = app.create("denied").await;

    for _ in 0..6 {
        app.dispatcher.run_batch().await.expect("a batch runs");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let message = app.message(&id).await;
    assert_eq!(message["status"], "failed");
    assert_eq!(message["attempts"], 3);
    assert!(message["processed_at"].is_string());
    let (_, attempts) = app.get(&format!("/api/v1/messages/{id}/attempts")).await;
    let numbers: Vec<i64> = attempts["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| a["number"].as_i64().expect("a number"))
        .collect();
    assert_eq!(numbers, [1, 2, 3]);

    let (status, retried) = app
        .post_empty(&format!("/api/v1/messages/{id}/retry"))
        .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["status"], "pending");
    app.dispatcher.run_batch().await.expect("a batch runs");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        4,
        "a retried message gets a fresh budget"
    );
    assert_eq!(app.message(&id).await["status"], "pending");
}

#[tokio::test]
async fn a_request_the_receiver_refuses_as_invalid_is_not_retried() {
    let (url, hits) = fixed_receiver(422, &[], r#"{"error":"bad number"}"#).await;
    let app = TestApp::spawn(&url, settings(&[])).await;
    let id = app.create("refused").await;

    app.dispatcher.run_batch().await.expect("a batch runs");
    app.dispatcher.run_batch().await.expect("a batch runs");

    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let message = app.message(&id).await;
    assert_eq!(message["status"], "failed");
    let (_, attempts) = app.get(&format!("/api/v1/messages/{id}/attempts")).await;
    assert!(
        attempts["data"][0]["response_excerpt"]
            .as_str()
            .expect("kept")
            .contains("bad number")
    );
}

#[tokio::test]
async fn retry_after_from_the_receiver_sets_the_next_attempt() {
    let (url, _) = fixed_receiver(429, &[("retry-after", "120")], "{}").await;
    let env = settings(&[("RETRY_MAX_DELAY", "1h"), ("RETRY_BASE_DELAY", "1s")]);
    let app = TestApp::spawn(&url, env).await;
    let id = app.create("later").await;

    app.dispatcher.run_batch().await.expect("a batch runs");

    let message = app.message(&id).await;
    let created: chrono::DateTime<chrono::Utc> = message["created_at"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("RFC 3339");
    let next: chrono::DateTime<chrono::Utc> = message["next_attempt_at"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("RFC 3339");
    let wait = (next - created).num_seconds();
    assert!(
        (119..=125).contains(&wait),
        "next attempt in {wait} s, not 120"
    );
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let target = TestSink::start().await;
    let location: &'static str = Box::leak(target.url.to_string().into_boxed_str());
    let (url, hits) = fixed_receiver(307, &[("location", location)], "").await;
    let app = TestApp::spawn(&url, settings(&[])).await;
    let id = app.create("moved").await;

    app.dispatcher.run_batch().await.expect("a batch runs");

    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(
        target.sink.received().is_empty(),
        "the redirect was followed"
    );
    let message = app.message(&id).await;
    assert_eq!(message["status"], "pending");
    let (_, attempts) = app.get(&format!("/api/v1/messages/{id}/attempts")).await;
    assert_eq!(attempts["data"][0]["error_kind"], "redirect");
}

#[tokio::test]
async fn a_2xx_without_a_message_id_counts_as_sent() {
    let (url, _) = fixed_receiver(200, &[], r#"{"message":"Accepted"}"#).await;
    let app = TestApp::spawn(&url, settings(&[])).await;
    let id = app.create("no id").await;

    let report = app.dispatcher.run_batch().await.expect("a batch runs");

    assert_eq!(report.sent, 1);
    let message = app.message(&id).await;
    assert_eq!(message["status"], "sent");
    assert!(message["message_id"].is_null());
}

#[tokio::test]
async fn every_webhook_request_carries_the_auth_key_the_payload_and_an_idempotency_key() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[])).await;
    let id = app.create("check the wire").await;

    app.dispatcher.run_batch().await.expect("a batch runs");

    let received = sink.sink.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert!(request.auth_ok);
    assert_eq!(request.idempotency_key.as_deref(), Some(id.as_str()));
    assert_eq!(request.to.as_deref(), Some("+905321234567"));
    assert_eq!(request.content.as_deref(), Some("check the wire"));
    assert_eq!(
        app.message(&id).await["message_id"].as_str(),
        request.message_id.as_deref()
    );
}

#[tokio::test]
async fn a_wrong_auth_key_is_refused_by_the_receiver_and_retried() {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[("WEBHOOK_AUTH_KEY", "wrong")])).await;
    let id = app.create("locked out").await;

    app.dispatcher.run_batch().await.expect("a batch runs");

    let message = app.message(&id).await;
    assert_eq!(message["status"], "pending");
    assert!(
        message["last_error"]
            .as_str()
            .expect("an error")
            .contains("401")
    );
}

#[tokio::test]
async fn a_huge_answer_is_read_only_up_to_the_cap_and_kept_as_a_short_excerpt() {
    let huge: &'static str =
        Box::leak(format!("{{\"error\":\"{}\"}}", "x".repeat(4 << 20)).into_boxed_str());
    let (url, _) = fixed_receiver(500, &[], huge).await;
    let app = TestApp::spawn(&url, settings(&[])).await;
    let id = app.create("big answer").await;

    app.dispatcher.run_batch().await.expect("a batch runs");

    let (_, attempts) = app.get(&format!("/api/v1/messages/{id}/attempts")).await;
    let excerpt = attempts["data"][0]["response_excerpt"]
        .as_str()
        .expect("an excerpt");
    assert_eq!(excerpt.chars().count(), qubit_core::webhook::EXCERPT_CHARS);
    assert_eq!(attempts["data"][0]["http_status"], 500);
}
