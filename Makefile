# The two commands a newcomer needs are `make run` and `make test`; see README.md.

CARGO ?= cargo
MESSAGES ?= 100000

.PHONY: run test lint unit sink faults

## run: the API on :8080 and the dispatcher, with a private PostgreSQL and test receiver
run:
	$(CARGO) run --bin qubit-local

## test: formatting, lints, and every test against a throwaway PostgreSQL
test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings

unit:
	scripts/python-tools.sh
	scripts/with-postgres.sh scripts/with-moto.sh scripts/test-suites.sh

## faults: the fault suite (MESSAGES=N, default 100000); figures in target/faults/report.txt
faults:
	$(CARGO) build --release --bin qubit-local --bin webhook-sink
	MESSAGES=$(MESSAGES) scripts/with-postgres.sh python3 faults/run.py

## sink: the webhook test service alone on :9090
sink:
	$(CARGO) run --bin webhook-sink
