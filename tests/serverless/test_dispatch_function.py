"""The `dispatch` function under `cargo lambda watch`, invoked with each payload EventBridge
Scheduler may send, and start/stop flipping a schedule in moto through the `api` function."""
import pytest

from conftest import http, invoke, received


def api(watch, path):
    return f"http://127.0.0.1:{watch['port']}/lambda-url/api{path}"


def create(watch, content):
    status, body = http("POST", api(watch, "/api/v1/messages"),
                        {"phone_number": "+905321234567", "content": content})
    assert status == 201, body
    return body["id"]


@pytest.mark.parametrize("payload", ["dispatch-scheduler-input.json", "dispatch-empty.json",
                                     "dispatch-scheduled-event.json"])
def test_one_invocation_sends_one_batch_whatever_the_payload(watch, sink, payload):
    # Drain what earlier tests left, so this invocation's batch is its own.
    while invoke(watch, "dispatch", "dispatch-empty.json")["claimed"]:
        pass
    before = len(received(sink))
    ids = [create(watch, f"{payload} {n}") for n in range(3)]

    report = invoke(watch, "dispatch", payload)

    assert report["claimed"] == 2 and report["sent"] == 2, report
    assert report["left"] == 1
    got = received(sink)[before:]
    assert len(got) == 2
    assert all(record["auth_ok"] for record in got)
    assert {record["idempotency_key"] for record in got} == set(ids[:2])
    for message_id in ids[:2]:
        _, message = http("GET", api(watch, f"/api/v1/messages/{message_id}"))
        assert message["status"] == "sent"


def all_but_state(schedule):
    return {key: value for key, value in schedule.items()
            if key not in ("State", "LastModificationDate", "ResponseMetadata")}


def test_start_and_stop_flip_only_the_schedules_state(watch, scheduler_client, schedule):
    original = scheduler_client.get_schedule(Name=schedule)

    for action, state, shown in [("stop", "DISABLED", "stopped"), ("stop", "DISABLED", "stopped"),
                                 ("start", "ENABLED", "running"), ("stop", "DISABLED", "stopped")]:
        status, body = http("POST", api(watch, f"/api/v1/scheduler/{action}"))
        assert status == 200, body
        assert body["state"] == shown
        now = scheduler_client.get_schedule(Name=schedule)
        assert now["State"] == state
        assert all_but_state(now) == all_but_state(original)

    status, body = http("GET", api(watch, "/api/v1/scheduler"))
    assert status == 200 and body["state"] == "stopped"
    http("POST", api(watch, "/api/v1/scheduler/start"))
