#!/usr/bin/env bash
# End-to-end: builds `ferrymq` (debug), serves it on a free port with a temporary data
# directory, runs the Python suite (generated OpenAPI client, schemathesis, plain HTTP) and the
# browser tests (a WebSocket page, and the web console at /console) against it, then stops the
# server. Install the tools first with scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -p ferrymq-gateway --bin ferrymq
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/debug/ferrymq"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
  --set segment_bytes=8MiB --set lease_ttl=5s >"$work/server.log" 2>&1 &
server=$!
stop() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT

export FERRYMQ_URL="http://127.0.0.1:$port"
# The console test starts a second server, with an auth_file, from the same binary.
export FERRYMQ_BIN="$bin"
for _ in $(seq 1 100); do
  if curl -fsS "$FERRYMQ_URL/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log"; exit 1; fi
  sleep 0.1
done
curl -fsS "$FERRYMQ_URL/healthz" >/dev/null || { cat "$work/server.log"; exit 1; }

status=0
python3 -m pytest tests/python -q -p no:cacheprovider || status=1
(cd tests/browser && node --test ws.test.mjs console.test.mjs) || status=1
if [ "$status" -ne 0 ]; then
  echo "--- server log (tail) ---"
  tail -n 50 "$work/server.log"
fi
exit "$status"
