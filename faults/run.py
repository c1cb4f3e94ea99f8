#!/usr/bin/env python3
"""Qubit's fault suite: real runners, a real PostgreSQL and the webhook test service, under
faults, counting what was lost, duplicated and failed.

Run it with `make faults` (MESSAGES=N, default 100000), which builds the release binaries and
provides a throwaway PostgreSQL through scripts/with-postgres.sh (DATABASE_URL, PG_BIN_DIR,
PG_DATA_DIR). Scenarios, in this order:

  clean           RUNNERS runners drain MESSAGES messages; no faults.
  always-failing  a receiver that always answers 403, then one that always answers 500:
                  attempts rise on each tick up to MAX_ATTEMPTS, then `failed`, then silence.
  faults          as clean, while a runner is killed with SIGKILL every KILL_EVERY seconds
                  (at most KILLS times) and restarted, PostgreSQL is restarted once, and the
                  receiver fails 10 % of requests with 500 and stalls 1 % past the client's
                  timeout.

Every figure goes to OUT (default target/faults/report.txt) and to standard output; the last
line printed is the faults scenario's `lost=L duplicated=D failed=F drained_in=Ss`. The exit
status is 1 when a message was lost or a duplicate is not explained by a kill or the restart.

Environment: MESSAGES, RUNNERS (8), KILL_EVERY (3), KILLS (unlimited), PROFILE (release),
SCENARIOS (clean,always-failing,faults), OUT.
"""
import collections
import concurrent.futures
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESSAGES = int(os.environ.get("MESSAGES", "100000"))
RUNNERS = int(os.environ.get("RUNNERS", "8"))
KILL_EVERY = float(os.environ.get("KILL_EVERY", "3"))
KILLS = int(os.environ.get("KILLS", "0")) or None
PROFILE = os.environ.get("PROFILE", "release")
SCENARIOS = os.environ.get("SCENARIOS", "clean,always-failing,faults").split(",")
OUT = os.environ.get("OUT", os.path.join(ROOT, "target", "faults", "report.txt"))
BIN = os.path.join(ROOT, "target", PROFILE)
AUTH_KEY = "faults-key"
# Settings of the runners under test: short enough that a run takes minutes, not hours.
WEBHOOK_TIMEOUT = 3.0
LEASE = 10.0
RUNNER_ENV = {
    "WEBHOOK_AUTH_KEY": AUTH_KEY,
    "SCHEDULER_INTERVAL": "200ms",
    "MESSAGE_BATCH_SIZE": "100",
    "WEBHOOK_TIMEOUT": f"{WEBHOOK_TIMEOUT}s",
    "LEASE_DURATION": f"{LEASE}s",
    "MAX_ATTEMPTS": "10",
    "RETRY_BASE_DELAY": "200ms",
    "RETRY_MAX_DELAY": "2s",
    "DATABASE_TIMEOUT": "2s",
    "SCHEDULER_AUTOSTART": "false",
    "RUST_LOG": "warn",
}

report_lines = []


def say(line):
    print(line, flush=True)
    report_lines.append(line)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(database_url, sql):
    out = subprocess.run(["psql", database_url, "-AtXqc", sql], capture_output=True, text=True,
                         timeout=30, env=dict(os.environ, PGCONNECT_TIMEOUT="3"))
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return [line.split("|") for line in out.stdout.splitlines() if line]


def fresh_database():
    server = os.environ["DATABASE_URL"]
    name = f"qubit_faults_{uuid.uuid4().hex[:12]}"
    psql(server, f"CREATE DATABASE {name}")
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(server)._replace(path=f"/{name}"))


def as_postgres():
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def restart_postgres():
    """A crash and a restart: `-m immediate` drops every connection without a clean shutdown.
    The server must not inherit our pipes, or waiting for pg_ctl would wait for the server."""
    data = os.environ["PG_DATA_DIR"]
    log = os.path.join(os.path.dirname(data), "server.log")
    subprocess.run(as_postgres() + [os.path.join(os.environ["PG_BIN_DIR"], "pg_ctl"), "-D", data,
                                    "-l", log, "-m", "immediate", "-w", "restart"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60, cwd="/")


class Process:
    """A child in its own session, so signals reach only it."""

    def __init__(self, argv, env, log):
        self.argv, self.env, self.log = argv, env, log
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def request(port, method, path, body=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def wait_healthy(port, process, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.proc.poll() is not None:
            break
        try:
            if request(port, "GET", "/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"a process on port {port} did not become healthy; see {process.log}")


class Stack:
    """One database, one receiver, and the runners."""

    def __init__(self, work, runners, sink_args, runner_env=None):
        self.database_url = fresh_database()
        self.sink_port = free_port()
        self.sink_log = os.path.join(work, "sink.jsonl")
        self.sink = Process([os.path.join(BIN, "webhook-sink"), "--addr",
                             f"127.0.0.1:{self.sink_port}", "--auth-key", AUTH_KEY,
                             "--log", self.sink_log] + sink_args,
                            dict(os.environ), os.path.join(work, "sink.log"))
        env = {**os.environ, **RUNNER_ENV, **(runner_env or {}),
               "DATABASE_URL": self.database_url,
               "WEBHOOK_URL": f"http://127.0.0.1:{self.sink_port}/webhook"}
        self.runners = []
        for i in range(runners):
            port = free_port()
            runner = Process([os.path.join(BIN, "qubit-local")], dict(env, SERVER_PORT=str(port)),
                             os.path.join(work, f"runner-{i}.log"))
            runner.port = port
            self.runners.append(runner)
        for runner in self.runners:
            wait_healthy(runner.port, runner)

    def create(self, count):
        """Creates `count` messages through the runners' API; returns their ids."""
        def create_range(worker):
            port = self.runners[worker % len(self.runners)].port
            ids = []
            for n in range(worker, count, 16):
                body = {"phone_number": "+905321234567", "content": f"fault suite message {n}"}
                status, message = request(port, "POST", "/api/v1/messages", body)
                if status != 201:
                    raise RuntimeError(f"create answered {status}: {message}")
                ids.append(message["id"])
            return ids

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            return {i for ids in pool.map(create_range, range(16)) for i in ids}

    def counts(self):
        rows = psql(self.database_url, "SELECT status, count(*) FROM messages GROUP BY status")
        return collections.Counter({status: int(n) for status, n in rows})

    def received(self):
        with open(self.sink_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        for process in self.runners + [self.sink]:
            process.stop()


def drain(stack, total, faults, deadline_s=3600):
    """Starts dispatch and waits until nothing is pending; returns (seconds, fault events)."""
    events = []
    request(stack.runners[0].port, "POST", "/api/v1/scheduler/start")
    started = time.time()
    next_kill = started + KILL_EVERY
    kills = 0
    restarted = False
    while time.time() - started < deadline_s:
        try:
            counts = stack.counts()
        except (RuntimeError, subprocess.TimeoutExpired):
            counts = None
        if counts is not None and counts["pending"] == 0:
            return time.time() - started, events
        done = total - counts["pending"] if counts else 0
        if faults and not restarted and done >= total * 0.3:
            down = time.time()
            restart_postgres()
            events.append(("postgres restart", down, time.time()))
            restarted = True
        if faults and time.time() >= next_kill and (KILLS is None or kills < KILLS):
            victim = random.choice(stack.runners)
            now = time.time()
            events.append((f"SIGKILL runner on :{victim.port}", now, now))
            victim.kill()
            time.sleep(0.5)
            victim.start()
            kills += 1
            next_kill = time.time() + KILL_EVERY
        time.sleep(0.2)
    raise RuntimeError(f"not drained within {deadline_s} s")


def analyse(stack, ids, events):
    """lost, duplicated, unexplained duplicates, failed reasons."""
    rows = psql(stack.database_url,
                "SELECT id, status, coalesce(webhook_message_id, ''), coalesce(last_error, '') "
                "FROM messages")
    # Messages with an attempt that timed out: the receiver may have taken the message and
    # answered too late, and the retry is then a repeat that no fault of ours caused.
    timed_out = {row[0] for row in psql(
        stack.database_url, "SELECT DISTINCT message FROM attempts WHERE error_kind = 'timeout'")}
    stored = {row[0]: row for row in rows}
    accepted = collections.defaultdict(list)
    for record in stack.received():
        if record["status"] == 202:
            accepted[record["idempotency_key"]].append(record)

    lost = []
    for message_id in ids:
        row = stored.get(message_id)
        if row is None or row[1] == "pending":
            lost.append(message_id)
        elif row[1] == "sent" and not any(r["message_id"] == row[2] for r in accepted[message_id]):
            lost.append(message_id)

    duplicated, unexplained, causes = 0, [], collections.Counter()
    for key, records in accepted.items():
        if len(records) < 2:
            continue
        duplicated += 1
        records.sort(key=lambda r: r["received_at"])
        first = parse_time(records[0]["received_at"])
        same = all((r["to"], r["content"]) == (records[0]["to"], records[0]["content"])
                   for r in records)
        # A repeat is expected only when the first send's outcome was never recorded: its
        # sender was killed after the send (within the lease), or the database was down
        # from before the send until after the lease ran out.
        near = [label.split(" ")[0] for label, start, end in events
                if (first - 0.1 <= start <= first + LEASE if label.startswith("SIGKILL")
                    else start - LEASE <= first <= end + LEASE)]
        if key in timed_out:
            near.append("late-answer")
        if same and near:
            causes[near[0]] += 1
        else:
            unexplained.append(key)

    failed = collections.Counter(row[3][:80] for row in stored.values() if row[1] == "failed")
    return lost, duplicated, unexplained, failed, causes


def parse_time(text):
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_drain(label, faults):
    work = tempfile.mkdtemp(prefix=f"qubit-faults-{label}-")
    sink_args = ["--fail-rate", "0.1", "--fail-status", "500", "--slow-rate", "0.01",
                 "--delay", f"{WEBHOOK_TIMEOUT * 2:.0f}s"] if faults else []
    stack = Stack(work, RUNNERS, sink_args)
    try:
        ids = stack.create(MESSAGES)
        seconds, events = drain(stack, MESSAGES, faults)
        lost, duplicated, unexplained, failed, causes = analyse(stack, ids, events)
        requests = len(stack.received())
    finally:
        stack.stop()

    say(f"## {label}: {RUNNERS} runners, {MESSAGES} messages"
        + (f", {sum(1 for e in events if e[0].startswith('SIGKILL'))} kills, "
           f"{sum(1 for e in events if e[0].startswith('postgres'))} PostgreSQL restart(s), "
           "receiver failing 10 % with 500 and stalling 1 % past the timeout" if faults else ""))
    say(f"delivered={len(ids) - len(lost) - sum(failed.values())} webhook_requests={requests} "
        f"duplicates_explained={duplicated - len(unexplained)} "
        f"duplicates_unexplained={len(unexplained)} throughput={MESSAGES / seconds:.0f}/s")
    if causes:
        say("duplicates by the fault they followed: "
            + ", ".join(f"{cause}={n}" for cause, n in causes.most_common()))
    for reason, n in failed.most_common():
        say(f"failed {n}: {reason}")
    if unexplained:
        say(f"unexplained duplicates (first 5): {unexplained[:5]}; logs in {work}")
    summary = (f"lost={len(lost)} duplicated={duplicated} failed={sum(failed.values())} "
               f"drained_in={seconds:.1f}s")
    say(summary)
    return not lost and not unexplained


def run_always_failing(status):
    """One runner, a receiver that always answers `status`: attempts rise per tick to the
    maximum, the message fails, and no request follows."""
    work = tempfile.mkdtemp(prefix=f"qubit-faults-{status}-")
    max_attempts = 4
    stack = Stack(work, 1, ["--fail-rate", "1", "--fail-status", str(status)],
                  {"MAX_ATTEMPTS": str(max_attempts), "SCHEDULER_INTERVAL": "300ms",
                   "RETRY_BASE_DELAY": "200ms", "RETRY_MAX_DELAY": "400ms"})
    port = stack.runners[0].port
    try:
        ids = sorted(stack.create(3))
        request(port, "POST", "/api/v1/scheduler/start")
        seen = collections.defaultdict(list)
        deadline = time.time() + 60
        while time.time() < deadline:
            states = [request(port, "GET", f"/api/v1/messages/{i}")[1] for i in ids]
            for message in states:
                if not seen[message["id"]] or seen[message["id"]][-1] != message["attempts"]:
                    seen[message["id"]].append(message["attempts"])
            if all(m["status"] == "failed" for m in states):
                break
            time.sleep(0.1)
        after_failed = len(stack.received())
        time.sleep(3)
        later = len(stack.received())
    finally:
        stack.stop()

    rising = all(steps == list(range(steps[0], max_attempts + 1)) for steps in seen.values())
    ok = (all(m["status"] == "failed" for m in states) and rising
          and after_failed == later == 3 * max_attempts)
    say(f"## always {status}: 3 messages, MAX_ATTEMPTS={max_attempts}")
    say(f"attempts seen per message: {[seen[i] for i in ids]}; all failed: "
        f"{all(m['status'] == 'failed' for m in states)}; requests at failure: {after_failed}, "
        f"3 s later: {later} ({'ok' if ok else 'WRONG'})")
    return ok


def main():
    for name in ("webhook-sink", "qubit-local"):
        if not os.path.exists(os.path.join(BIN, name)):
            sys.exit(f"{os.path.join(BIN, name)} is missing: cargo build --{PROFILE}")
    say(f"# Qubit fault suite, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, "
        f"{os.cpu_count()} cores, {PROFILE} build")
    say("runner settings: " + " ".join(f"{k}={v}" for k, v in RUNNER_ENV.items()
                                        if k not in ("WEBHOOK_AUTH_KEY", "RUST_LOG")))
    ok = True
    if "clean" in SCENARIOS:
        ok &= run_drain("clean", faults=False)
    if "always-failing" in SCENARIOS:
        ok &= run_always_failing(403)
        ok &= run_always_failing(500)
    if "faults" in SCENARIOS:
        ok &= run_drain("faults", faults=True)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(report_lines) + "\n")
    # The figures file is written; the summary of the last run stays the last line printed.
    print(f"(figures written to {OUT})", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
