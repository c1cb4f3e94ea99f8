#!/usr/bin/env bash
# Installs the Python tools the serverless tests use into .venv and .venv-compose, from PyPI.
# Re-running is cheap: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

install() {
  local venv=$1 requirements=$2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
}

install .venv tests/serverless/requirements.txt
install .venv-compose tests/serverless/compose-requirements.txt
