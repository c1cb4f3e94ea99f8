//! The shared request cases in `tests/fixtures/requests.json`, each sent to a fresh instance.

use serde::Deserialize;
use serde_json::Value;

use crate::common::{TestApp, TestSink, read, settings};

#[derive(Debug, Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    method: String,
    path: String,
    #[serde(default)]
    headers: std::collections::HashMap<String, String>,
    body: Option<Value>,
    raw: Option<String>,
    expect_status: Vec<u16>,
    expect_error_mentions: Option<String>,
    #[serde(default)]
    expect_roundtrip: bool,
    #[serde(default = "once")]
    repeat: usize,
}

fn once() -> usize {
    1
}

#[tokio::test]
async fn every_shared_request_case_gets_its_expected_answer() {
    let cases: Cases = serde_json::from_str(include_str!("../fixtures/requests.json"))
        .expect("the fixture parses");
    assert!(!cases.cases.is_empty());
    let sink = TestSink::start().await;

    for case in cases.cases {
        let app = TestApp::spawn(&sink.url, settings(&[])).await;
        for _ in 0..case.repeat {
            let (status, body) = send(&app, &case).await;
            assert!(
                case.expect_status.contains(&status),
                "{}: answered {status}, expected {:?}: {body}",
                case.name,
                case.expect_status
            );

            if status >= 400 {
                let error = &body["error"];
                assert!(
                    error["code"].is_string(),
                    "{}: no error code: {body}",
                    case.name
                );
                assert!(
                    error["message"].is_string(),
                    "{}: no message: {body}",
                    case.name
                );
                // Nothing refused may be stored.
                let (_, all) = app.get("/api/v1/messages?status=all").await;
                assert_eq!(
                    all["data"].as_array().map(Vec::len),
                    Some(0),
                    "{}",
                    case.name
                );
            }
            if let Some(field) = &case.expect_error_mentions {
                assert!(
                    body["error"].to_string().contains(field.as_str()),
                    "{}: the error does not mention {field}: {body}",
                    case.name
                );
            }
            if case.expect_roundtrip {
                let id = body["id"].as_str().expect("an id");
                let stored = app.message(id).await;
                assert_eq!(
                    stored["content"],
                    case.body.as_ref().expect("a body")["content"]
                );
            }
        }
    }
}

async fn send(app: &TestApp, case: &Case) -> (u16, Value) {
    let method = case.method.parse().expect("a method");
    let mut request = app
        .http
        .request(method, format!("{}{}", app.base, case.path));
    for (name, value) in &case.headers {
        request = request.header(name, value);
    }
    if let Some(raw) = &case.raw {
        request = request.body(raw.clone());
    } else if let Some(body) = &case.body {
        request = request.json(body);
    }
    read(request.send().await.expect("the API answers")).await
}
