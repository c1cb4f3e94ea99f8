#!/usr/bin/env bash
# Runs a command with a local AWS emulator (moto's server, from .venv) on a free loopback port,
# named in QUBIT_TEST_AWS_ENDPOINT, then stops it. scripts/python-tools.sh installs moto.
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp "${TMPDIR:-/tmp}/qubit-moto.XXXXXX")
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true; rm -f "$log"' EXIT

for _ in $(seq 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

export QUBIT_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
"$@"
