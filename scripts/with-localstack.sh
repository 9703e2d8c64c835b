#!/usr/bin/env bash
# Runs a command against a private LocalStack (no Docker needed), with SNS and SQS only:
#   scripts/with-localstack.sh cargo test -p orderflow-tests --test emulator
# Creates .venv-localstack from scripts/requirements-localstack.txt if missing or stale (needs a
# Python >= 3.13: set LOCALSTACK_PYTHON, or it looks on PATH and in pyenv), starts LocalStack's
# runtime from it on a free loopback port with its state in a temporary directory, waits until
# its health endpoint reports SNS and SQS, exports AWS_ENDPOINT_URL and dummy credentials/region
# (and nothing from ~/.aws), runs the command, and stops LocalStack and its child processes
# whatever the command's outcome. Exits with the command's status.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${LOCALSTACK_VENV:-$root/.venv-localstack}
requirements=$root/scripts/requirements-localstack.txt
python=$venv/bin/python
stamp=$venv/.installed-$(cksum <"$requirements" | cut -d' ' -f1)

# LocalStack 4.14 imports warnings.deprecated, new in Python 3.13.
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

if [ ! -f "$stamp" ] || ! is_new_enough "$python"; then
  if ! is_new_enough "$python"; then
    if ! base=$(find_python); then
      echo "with-localstack: no Python >= 3.13 found; set LOCALSTACK_PYTHON to one" >&2
      exit 2
    fi
    echo "with-localstack: creating $venv with $base" >&2
    rm -rf "$venv"
    "$base" -m venv "$venv"
    "$python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  fi
  echo "with-localstack: installing $requirements into $venv" >&2
  "$python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log_dir=$root/target
mkdir -p "$log_dir"
log=$log_dir/localstack.log
state=$(mktemp -d "${TMPDIR:-/tmp}/localstack.XXXXXX")
# Its own session (and so process group): stopping the group stops every child it started, and
# a Ctrl-C at the terminal reaches this script, which stops LocalStack in order.
env OVERRIDE_IN_DOCKER=0 \
  SERVICES=sns,sqs EAGER_SERVICE_LOADING=1 \
  GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" SQS_ENDPOINT_STRATEGY=path \
  FILESYSTEM_ROOT="$state/filesystem" LOCALSTACK_VOLUME_DIR="$state/volume" \
  DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 SQS_DISABLE_CLOUDWATCH_METRICS=1 \
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
endpoint, pid = sys.argv[1], int(sys.argv[2])
wanted = ("sns", "sqs")
deadline = time.monotonic() + 120
services = {}
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("LocalStack exited during start-up")
    try:
        with urllib.request.urlopen(endpoint + "/_localstack/health", timeout=2) as response:
            services = json.load(response).get("services", {})
        if all(services.get(name) in ("available", "running") for name in wanted):
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.2)
sys.exit(f"LocalStack did not report {', '.join(wanted)} available within 120 s: "
         f"{ {name: services.get(name) for name in wanted} }")
PY
then
  echo "with-localstack: LocalStack did not start; its log ($log):" >&2
  cat "$log" >&2
  exit 1
fi
echo "with-localstack: LocalStack $("$python" -c 'from importlib.metadata import version; print(version("localstack-core"))') at $endpoint (log: $log)" >&2

# shellcheck source=scripts/run-against-emulator.sh
. "$root/scripts/run-against-emulator.sh"
run_against_emulator "$endpoint" "$@"
