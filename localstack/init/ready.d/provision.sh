#!/usr/bin/env bash
# LocalStack init hook (ready stage): provisions infra/template.yaml's topics, queues, DLQs,
# subscriptions and tables into this LocalStack with orderflow-local, the same provisioner
# `make run` and the end-to-end tests use, so local resources match deployed ones. Functions are
# run from the host: AWS_ENDPOINT_URL=http://localhost:4566 orderflow-local up (which keeps what
# this created).
set -euo pipefail
provisioner=/opt/orderflow/bin/orderflow-local
if [ ! -x "$provisioner" ] || ! "$provisioner" --version >/dev/null 2>&1; then
  echo "orderflow: $provisioner is missing or not a Linux binary for this container;" \
    "build it on the host (cargo build -p orderflow-local), or provision from the host:" \
    "AWS_ENDPOINT_URL=http://localhost:4566 orderflow-local provision" >&2
  exit 0
fi
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  "$provisioner" provision --endpoint http://localhost:4566 \
  --template /opt/orderflow/template.yaml --stack-name "${ORDERFLOW_STACK_NAME:-orderflow-local}"
