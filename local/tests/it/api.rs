//! Every endpoint's success and error answers, through the real router and database.

use serde_json::json;

use crate::common::{TestApp, TestSink, read, settings};

async fn app() -> (TestSink, TestApp) {
    let sink = TestSink::start().await;
    let app = TestApp::spawn(&sink.url, settings(&[])).await;
    (sink, app)
}

#[tokio::test]
async fn creating_a_message_stores_it_normalised_and_pending() {
    let (_sink, app) = app().await;

    let (status, message) = app
        .post(
            "/api/v1/messages",
            &json!({ "phone_number": "+90 (532) 123-45-67", "content": "Merhaba 👋" }),
        )
        .await;

    assert_eq!(status, 201, "{message}");
    assert_eq!(message["phone_number"], "+905321234567");
    assert_eq!(message["content"], "Merhaba 👋");
    assert_eq!(message["status"], "pending");
    assert_eq!(message["attempts"], 0);
    assert!(message["message_id"].is_null());
    assert!(
        message["created_at"]
            .as_str()
            .expect("a timestamp")
            .ends_with('Z')
    );
    let stored = app.message(message["id"].as_str().expect("an id")).await;
    assert_eq!(stored, message);
}

#[tokio::test]
async fn invalid_messages_are_refused_naming_the_field_and_not_stored() {
    let (_sink, app) = app().await;
    let cases = [
        (json!({ "content": "hi" }), "phone_number"),
        (json!({ "phone_number": "+905321234567" }), "content"),
        (
            json!({ "phone_number": "+905321234567", "content": "" }),
            "content",
        ),
        (
            json!({ "phone_number": "+905321234567", "content": "   " }),
            "content",
        ),
        (
            json!({ "phone_number": "+905321234567", "content": 42 }),
            "content",
        ),
        (
            json!({ "phone_number": "+905321234567", "content": "a\u{0}b" }),
            "content",
        ),
        (
            json!({ "phone_number": "not a number", "content": "hi" }),
            "phone_number",
        ),
        (
            json!({ "phone_number": "+90", "content": "hi" }),
            "phone_number",
        ),
        (
            json!({ "phone_number": ["+905321234567"], "content": "hi" }),
            "phone_number",
        ),
        (json!(["+905321234567", "hi"]), "body"),
    ];

    for (body, field) in cases {
        let (status, answer) = app.post("/api/v1/messages", &body).await;

        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "invalid_field", "{body}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }
    let (_, all) = app.get("/api/v1/messages?status=all").await;
    assert_eq!(all["data"], json!([]));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_a_json_error() {
    let (_sink, app) = app().await;
    let url = format!("{}/api/v1/messages", app.base);

    let no_type = app
        .http
        .post(&url)
        .body(r#"{"phone_number":"+905321234567","content":"x"}"#);
    let (status, body) = read(no_type.send().await.expect("answers")).await;
    assert_eq!(status, 415);
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    let text = app
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("hello");
    let (status, _) = read(text.send().await.expect("answers")).await;
    assert_eq!(status, 415);

    let body = r#"{"phone_number":"+905321234567","content":"x"}"#;
    for (content_type, expected) in [
        ("application/json; charset=latin1", 415),
        ("application/+json", 415),
        ("application/json; charset=UTF-8", 201),
        ("application/problem+json", 201),
    ] {
        let request = app
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        let (status, answer) = read(request.send().await.expect("answers")).await;
        assert_eq!(status, expected, "{content_type}: {answer}");
    }

    for raw in ["{", "", "{\"content\": \"x\",}", "{} {}"] {
        let request = app
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(raw);
        let (status, body) = read(request.send().await.expect("answers")).await;
        assert_eq!(status, 400, "{raw:?}");
        assert_eq!(body["error"]["code"], "malformed_json", "{raw:?}");
    }

    let huge = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 100 * 1024]);
    let (status, body) = read(huge.send().await.expect("answers")).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn listing_shows_sent_messages_newest_first_by_default() {
    let (_sink, app) = app().await;
    for n in 0..3 {
        app.create(&format!("message {n}")).await;
    }

    let (status, sent) = app.get("/api/v1/messages").await;
    assert_eq!(status, 200);
    assert_eq!(sent["data"], json!([]));

    app.dispatcher.run_batch().await.expect("a batch runs");

    let (_, sent) = app.get("/api/v1/messages").await;
    let contents: Vec<&str> = sent["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    assert_eq!(contents, ["message 1", "message 0"]);
    for message in sent["data"].as_array().expect("a list") {
        assert_eq!(message["status"], "sent");
        assert!(message["message_id"].is_string());
        assert!(message["processed_at"].is_string());
    }
    let (_, pending) = app.get("/api/v1/messages?status=pending").await;
    assert_eq!(pending["data"][0]["content"], "message 2");
}

#[tokio::test]
async fn a_cursor_walks_every_message_once() {
    let (_sink, app) = app().await;
    for n in 0..7 {
        app.create(&format!("m{n}")).await;
    }

    let mut seen = Vec::new();
    let mut path = "/api/v1/messages?status=all&limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for message in page["data"].as_array().expect("a list") {
            seen.push(message["content"].as_str().expect("content").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/messages?status=all&limit=3&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(seen, ["m6", "m5", "m4", "m3", "m2", "m1", "m0"]);
}

#[tokio::test]
async fn bad_listing_parameters_are_refused_naming_the_parameter() {
    let (_sink, app) = app().await;
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("status=lost", "status"),
        ("cursor=not-a-cursor", "cursor"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/messages?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["parameter"], parameter, "{query}");
    }
}

#[tokio::test]
async fn an_unknown_message_is_404_whatever_its_id_looks_like() {
    let (_sink, app) = app().await;
    for id in ["987654321", "01a23c25-335c-75a8-923a-86846fbbc652", "%20"] {
        let (status, body) = app.get(&format!("/api/v1/messages/{id}")).await;
        assert_eq!(status, 404, "{id}");
        assert_eq!(body["error"]["code"], "not_found");
        let (status, _) = app.get(&format!("/api/v1/messages/{id}/attempts")).await;
        assert_eq!(status, 404, "{id}");
        let (status, _) = app
            .post_empty(&format!("/api/v1/messages/{id}/retry"))
            .await;
        assert_eq!(status, 404, "{id}");
        let (status, _) = app.delete(&format!("/api/v1/messages/{id}")).await;
        assert_eq!(status, 404, "{id}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let (_sink, app) = app().await;

    let (status, body) = app.get("/api/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    let (status, body) = app.delete("/api/v1/messages").await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn a_pending_message_can_be_cancelled_once_and_is_never_sent() {
    let (sink, app) = app().await;
    let id = app.create("never mind").await;

    let (status, message) = app.delete(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["status"], "cancelled");

    let (status, body) = app.delete(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "conflict");

    app.dispatcher.run_batch().await.expect("a batch runs");
    assert!(sink.sink.received().is_empty());
}

#[tokio::test]
async fn retry_applies_only_to_failed_messages() {
    let (_sink, app) = app().await;
    let id = app.create("hello").await;

    let (status, body) = app
        .post_empty(&format!("/api/v1/messages/{id}/retry"))
        .await;

    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("text")
            .contains("pending")
    );
}

#[tokio::test]
async fn health_answers_ok_while_the_database_answers() {
    let (_sink, app) = app().await;

    let (status, body) = app.get("/health").await;

    assert_eq!(status, 200);
    assert_eq!(body, json!({ "status": "ok" }));
}

#[tokio::test]
async fn health_and_reads_answer_503_when_the_database_is_gone() {
    let (_sink, app) = app().await;
    let id = app.create("before the outage").await;

    // Drop the database under the running instance: every connection to it ends.
    let client = crate::common::admin().await;
    let name = crate::common::database_name(&app.database_url);
    client
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drops");

    let (status, body) = app.get("/health").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let (status, _) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(status, 503);
    let (status, _) = app
        .post(
            "/api/v1/messages",
            &json!({ "phone_number": "+905321234567", "content": "x" }),
        )
        .await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn a_path_the_framework_rejects_still_gets_a_json_error() {
    let (_sink, app) = app().await;

    let (status, body) = app.get("/api/v1/messages/%FF").await;

    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_sink, app) = app().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connects");

    stream
        .write_all(
            b"POST /api/v1/messages HTTP/1.1\r\nhost: qubit\r\n\
              content-type: application/json\r\ncontent-length: 10000000000\r\n\r\n{",
        )
        .await
        .expect("written");
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(std::time::Duration::from_secs(3), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .expect("read");

    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}
