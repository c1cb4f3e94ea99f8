#!/usr/bin/env bash
# The test suites, run by `make test` inside scripts/with-postgres.sh and scripts/with-moto.sh:
# the Rust tests, then the serverless tests (cargo lambda watch, API Gateway events, the SAM
# template and the compose file), then a reduced fault suite.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
.venv/bin/pytest -q tests/serverless

# The fault suite, reduced: 2,000 messages, one runner killed, PostgreSQL restarted once.
MESSAGES=2000 KILLS=1 PROFILE=debug SCENARIOS=faults OUT=target/faults/reduced.txt \
  python3 faults/run.py
