"""Fixtures for the serverless tests: a database, moto, a receiver, `cargo lambda watch`
running both functions, and the local runner for comparison.

Run by `make test` (scripts/test-suites.sh), which provides DATABASE_URL (a throwaway
PostgreSQL) and QUBIT_TEST_AWS_ENDPOINT (moto's server) and installs the tools into .venv.
"""
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
EVENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events")
AUTH_KEY = "serverless-test-key"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=60):
    """(status, parsed JSON body or raw text) for one request."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if body is not None and not isinstance(body, bytes):
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_for(url, seconds, process=None, log=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            break
        try:
            status, _ = http("GET", url, timeout=60)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    tail = open(log).read()[-3000:] if log else ""
    pytest.fail(f"{url} did not answer 200 within {seconds} s\n{tail}")


def fresh_database():
    """A new database on the test server; its URL."""
    server = os.environ["DATABASE_URL"]
    name = f"qubit_sls_{uuid.uuid4().hex}"
    parsed = urllib.parse.urlsplit(server)
    psql_env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    subprocess.run(["psql", server, "-qc", f"CREATE DATABASE {name}"], check=True, env=psql_env)
    return urllib.parse.urlunsplit(parsed._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("serverless")


@pytest.fixture(scope="session")
def binaries():
    subprocess.run(["cargo", "build", "--quiet", "--bin", "webhook-sink", "--bin", "qubit-local"],
                   cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "debug")


@pytest.fixture(scope="session")
def sink(tmp, binaries):
    """The webhook test service; yields its URL and the path of its JSON-lines log."""
    port = free_port()
    log = os.path.join(tmp, "sink.jsonl")
    process = subprocess.Popen(
        [os.path.join(binaries, "webhook-sink"), "--addr", f"127.0.0.1:{port}",
         "--auth-key", AUTH_KEY, "--log", log],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{port}/received", 30, process)
    yield {"url": f"http://127.0.0.1:{port}/webhook", "log": log, "base": f"http://127.0.0.1:{port}"}
    process.terminate()
    process.wait(10)


def received(sink):
    if not os.path.exists(sink["log"]):
        return []
    with open(sink["log"]) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def scheduler_client():
    return boto3.client("scheduler", endpoint_url=os.environ["QUBIT_TEST_AWS_ENDPOINT"],
                        region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


@pytest.fixture(scope="session")
def schedule(scheduler_client):
    """A schedule with every field set, as the deployed one would be; yields its name."""
    name = f"qubit-dispatch-{uuid.uuid4().hex[:8]}"
    scheduler_client.create_schedule(
        Name=name,
        ScheduleExpression="rate(2 minutes)",
        ScheduleExpressionTimezone="Europe/Istanbul",
        Description="serverless tests",
        StartDate="2099-01-01T00:00:00Z",
        EndDate="2100-01-01T00:00:00Z",
        KmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:qubit-dispatch",
            "RoleArn": "arn:aws:iam::123456789012:role/qubit-scheduler",
            "Input": json.dumps({"source": "qubit-schedule"}),
            "RetryPolicy": {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 2},
            "DeadLetterConfig": {"Arn": "arn:aws:sqs:us-east-1:123456789012:qubit-dlq"},
        },
        State="ENABLED",
    )
    return name


@pytest.fixture(scope="session")
def watch(tmp, sink, schedule):
    """`cargo lambda watch` serving both functions; yields its port and the database URL."""
    port = free_port()
    database_url = fresh_database()
    env = dict(os.environ, **AWS_ENV,
               AWS_ENDPOINT_URL=os.environ["QUBIT_TEST_AWS_ENDPOINT"],
               DATABASE_URL=database_url, WEBHOOK_URL=sink["url"], WEBHOOK_AUTH_KEY=AUTH_KEY,
               SCHEDULE_NAME=schedule, MESSAGE_BATCH_SIZE="2", RUST_LOG="info")
    env.pop("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", None)
    log = os.path.join(tmp, "watch.log")
    process = subprocess.Popen(
        [os.path.join(VENV_BIN, "cargo-lambda"), "lambda", "watch", "-A", "127.0.0.1",
         "-P", str(port)],
        cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/lambda-url/api/health", 900, process, log)
    yield {"port": port, "database_url": database_url, "log": log, "env": env}
    os.killpg(process.pid, 15)
    process.wait(30)


@pytest.fixture(scope="session")
def local_runner(tmp, sink, binaries):
    """The local runner on a database of its own, for comparing answers."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=fresh_database(), WEBHOOK_URL=sink["url"],
               WEBHOOK_AUTH_KEY=AUTH_KEY, SERVER_PORT=str(port), SCHEDULER_AUTOSTART="false")
    log = os.path.join(tmp, "local.log")
    process = subprocess.Popen([os.path.join(binaries, "qubit-local")], cwd=ROOT, env=env,
                               stdout=open(log, "w"), stderr=subprocess.STDOUT)
    wait_for(f"http://127.0.0.1:{port}/health", 60, process, log)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(30)


def invoke(watch, function, payload_file):
    """`cargo lambda invoke` with an event file; returns the function's parsed answer."""
    out = subprocess.run(
        [os.path.join(VENV_BIN, "cargo-lambda"), "lambda", "invoke", function,
         "--invoke-address", "127.0.0.1", "--invoke-port", str(watch["port"]),
         "--data-file", os.path.join(EVENTS, payload_file), "--output-format", "json"],
        cwd=ROOT, env=watch["env"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"invoke {function} {payload_file}: {out.stderr[-2000:]}"
    return json.loads(out.stdout)
