# orderflow — the two commands a new user needs are `make run` and `make test`.
# Everything they need (a Python venv with the emulator and the AWS CLI) is installed here.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed-$(shell cksum < scripts/requirements-emulator.txt | cut -d' ' -f1)
CARGO ?= cargo
# Tools in the venv (moto, aws) come first on PATH for the scripts and tests.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv build lint test test-localstack unit run clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV_STAMP): scripts/requirements-emulator.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-emulator.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(VENV_STAMP) ## Create .venv with the pinned emulator (moto) and AWS CLI

build: ## Build every crate, binary and test once
	$(CARGO) build --workspace --all-targets --locked

lint: ## cargo fmt --check and clippy -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: ## Unit tests only (no emulator)
	$(CARGO) test --workspace --lib --bins --locked

test: venv lint build ## Lint, build, then every test against a private moto server
	scripts/with-moto.sh $(CARGO) test --workspace --locked

# The emulator tests against LocalStack (no Docker; needs Python >= 3.13, e.g. from pyenv).
# SNS and SQS only: the DynamoDB tests (idempotency::) need moto. LocalStack's PublishBatch
# never fails a single entry, so the per-entry rejection test cannot run there.
LOCALSTACK_SKIPS := --skip idempotency:: --skip an_entry_the_service_rejects
test-localstack: venv build ## The emulator tests against a private LocalStack (optional)
	scripts/with-localstack.sh $(CARGO) test --locked -p orderflow-tests --test emulator -- $(LOCALSTACK_SKIPS)

run: venv ## Show the whole order flow on a local emulator (handlers in-process until the runner exists)
	$(CARGO) build --locked -p orderflow-tests --bin flow-demo
	scripts/with-moto.sh $(CARGO) run --quiet --locked -p orderflow-tests --bin flow-demo

clean: ## Remove build output and the venv
	$(CARGO) clean
	rm -rf $(VENV)
