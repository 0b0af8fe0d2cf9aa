#!/usr/bin/env bash
# The cost of authentication: requests per second of an authenticated
# `GET /api/v1/users/me` against unauthenticated `GET /healthz`, on one
# release build, SQLite in a temporary data dir. Needs `wrk` (apt-get install wrk).
#
#   scripts/bench-auth.sh [duration-seconds] [connections] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-15}"
connections="${2:-32}"
threads="${3:-2}"
port="${BENCH_PORT:-18181}"

command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release -p mcpgate-server --quiet

dir="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
# No rate limits: the point is to measure the server at full load.
MCPGATE_RATE_LIMIT_CREDENTIAL_PER_MINUTE=0 MCPGATE_RATE_LIMIT_IP_PER_MINUTE=0 \
  MCPGATE_LOG=warn ./target/release/mcpgate --data-dir "$dir/data" --listen "127.0.0.1:$port" &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

key="$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/users/register" \
  -H 'content-type: application/json' -d '{"name":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"

echo "machine: $(nproc) cores; wrk -t$threads -c$connections -d${duration}s; server and wrk on one host"
for target in healthz me; do
  if [ "$target" = healthz ]; then
    wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$port/healthz"
  else
    wrk -t"$threads" -c"$connections" -d"${duration}s" --latency \
      -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/users/me"
  fi
done
