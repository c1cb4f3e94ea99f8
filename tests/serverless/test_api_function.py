"""The `api` function under `cargo lambda watch`: over HTTP as a function URL, and fed API
Gateway REST events, it answers as the local runner does."""
import base64
import json
import os

import pytest

from conftest import EVENTS, ROOT, http, invoke

CASES = os.path.join(ROOT, "local", "tests", "fixtures", "requests.json")


def api(watch, path):
    return f"http://127.0.0.1:{watch['port']}/lambda-url/api{path}"


def test_health_answers_through_the_function(watch):
    status, body = http("GET", api(watch, "/health"))
    assert status == 200
    assert body == {"status": "ok"}


@pytest.mark.parametrize("case", json.load(open(CASES))["cases"], ids=lambda case: case["name"])
def test_each_shared_request_case_gets_its_expected_answer(watch, case):
    raw = case.get("raw")
    body = raw.encode() if raw is not None else case.get("body")
    for _ in range(case.get("repeat", 1)):
        status, answer = http(case["method"], api(watch, case["path"]), body=body,
                              headers=case.get("headers"))
        assert status in case["expect_status"], answer
        if status >= 400:
            assert isinstance(answer, dict) and {"code", "message"} <= set(answer["error"])
        if case.get("expect_error_mentions"):
            assert case["expect_error_mentions"] in json.dumps(answer["error"])
        if case.get("expect_roundtrip"):
            _, stored = http("GET", api(watch, f"/api/v1/messages/{answer['id']}"))
            assert stored["content"] == case["body"]["content"]


def local_request(event):
    """The HTTP request to the local runner that an API Gateway REST event stands for."""
    context = event["requestContext"]
    path = event["path"]
    prefix = "/" + context["stage"]
    if path.startswith(prefix + "/"):
        path = path[len(prefix):]
    query = event.get("multiValueQueryStringParameters") or {}
    pairs = [f"{key}={value}" for key, values in query.items() for value in values]
    if pairs:
        path += "?" + "&".join(pairs)
    body = event.get("body")
    if body is not None:
        body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = {k: v for k, v in event["headers"].items() if k in ("content-type", "accept")}
    return event["httpMethod"], path, body, headers


def comparable(status, body):
    """What must match between the two: the status, the error code, and the message's fields
    that do not depend on when or where it was stored."""
    if isinstance(body, dict) and "error" in body:
        return status, body["error"]["code"], body["error"].get("field"), body["error"].get("parameter")
    if isinstance(body, dict) and "phone_number" in body:
        return status, body["phone_number"], body["content"], body["status"]
    if isinstance(body, dict) and "data" in body:
        return status, "list"
    return status, body


@pytest.mark.parametrize("event_file", sorted(f for f in os.listdir(EVENTS) if f.startswith("rest-")))
def test_an_api_gateway_rest_event_gets_the_local_runners_answer(watch, local_runner, event_file):
    event = json.load(open(os.path.join(EVENTS, event_file)))

    answer = invoke(watch, "api", event_file)

    lambda_body = answer["body"]
    if answer.get("isBase64Encoded"):
        lambda_body = base64.b64decode(lambda_body).decode()
    lambda_body = json.loads(lambda_body)
    method, path, body, headers = local_request(event)
    local_status, local_body = http(method, local_runner + path, body=body, headers=headers)
    assert comparable(answer["statusCode"], lambda_body) == comparable(local_status, local_body)


def test_the_stage_in_the_path_reaches_the_same_handler(watch):
    with_stage = invoke(watch, "api", "rest-create-stage-in-path.json")
    without = invoke(watch, "api", "rest-create-no-stage.json")

    assert with_stage["statusCode"] == without["statusCode"] == 201
    assert json.loads(with_stage["body"])["phone_number"] == "+905321234567"


def test_a_multi_value_query_string_reaches_the_handler(watch):
    answer = invoke(watch, "api", "rest-list-multi-value-query.json")

    assert answer["statusCode"] == 200
    page = json.loads(answer["body"])
    # limit=1 was honoured, and the last status value (all) chosen
    assert len(page["data"]) == 1
    assert page["next_cursor"] is not None
