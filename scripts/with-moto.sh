#!/usr/bin/env bash
# Runs a command against a private moto server:
#   scripts/with-moto.sh cargo test --workspace
# Starts moto's server (scripts/moto-server.py: DynamoDB requests isolated as on AWS) from .venv on a free loopback port, waits until it answers, exports
# AWS_ENDPOINT_URL and dummy credentials/region (and nothing from ~/.aws), runs the command,
# and stops the server whatever the command's outcome. Exits with the command's status.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${VENV:-$root/.venv}/bin/python
if [ ! -x "$python" ]; then
  echo "with-moto: $python not found; run 'make venv' (make test does it)" >&2
  exit 2
fi

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log_dir=$root/target
mkdir -p "$log_dir"
log=$log_dir/moto.log
"$python" "$root/scripts/moto-server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
stop_moto() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
trap stop_moto EXIT

endpoint=http://127.0.0.1:$port
if ! "$python" - "$endpoint" "$moto_pid" <<'PY'
import os, sys, time, urllib.request
endpoint, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("moto exited during start-up")
    try:
        urllib.request.urlopen(endpoint + "/moto-api/reset", data=b"", timeout=2)
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("moto did not answer within 60 s")
PY
then
  echo "with-moto: moto did not start; its log ($log):" >&2
  cat "$log" >&2
  exit 1
fi
echo "with-moto: moto $("$python" -c 'import moto; print(moto.__version__)') at $endpoint (log: $log)" >&2

# shellcheck source=scripts/run-against-emulator.sh
. "$root/scripts/run-against-emulator.sh"
# Benchmarks read the emulator's CPU time from its process (and its children).
export ORDERFLOW_EMULATOR_PID=$moto_pid
run_against_emulator "$endpoint" "$@"
