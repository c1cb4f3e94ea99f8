#!/usr/bin/env bash
# The test suites, run by `make test` inside scripts/with-postgres.sh and scripts/with-moto.sh:
# the Rust tests, then the serverless tests (cargo lambda watch, API Gateway events, the SAM
# template and the compose file).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
.venv/bin/pytest -q tests/serverless
