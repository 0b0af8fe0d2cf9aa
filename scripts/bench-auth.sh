#!/usr/bin/env bash
# The cost of authentication: requests per second of an authenticated
# `GET /api/v1/users/me` (with an API key, then with an OAuth access token)
# against unauthenticated `GET /healthz`, and of an MCP `tools/call`
# (memory_stats) on `/mcp`, on one release build, SQLite in a temporary data
# dir. Needs `wrk` (apt-get install wrk).
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
  MCPGATE_PUBLIC_URL="http://127.0.0.1:$port" MCPGATE_LOG=warn ./target/release/mcpgate --data-dir "$dir/data" --listen "127.0.0.1:$port" &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

key="$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/users/register" \
  -H 'content-type: application/json' -d '{"name":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"

# An access token through client_credentials (an owned confidential client).
client="$(curl -fsS -X POST "http://127.0.0.1:$port/oauth/register" -H "Authorization: Bearer $key" \
  -H 'content-type: application/json' \
  -d '{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post"}')"
client_id="$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')"
client_secret="$(echo "$client" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')"
token="$(curl -fsS -X POST "http://127.0.0.1:$port/oauth/token" -d grant_type=client_credentials \
  -d "client_id=$client_id" -d "client_secret=$client_secret" \
  -d "resource=http://127.0.0.1:$port" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

cat > "$dir/mcp.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"memory_stats","arguments":{}}}'
LUA

echo "machine: $(nproc) cores; wrk -t$threads -c$connections -d${duration}s; server and wrk on one host"
run() { echo "== $1"; shift; wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$@"; }
run healthz "http://127.0.0.1:$port/healthz"
run "users/me, API key" -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/users/me"
run "users/me, access token" -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/users/me"
run "mcp tools/call memory_stats, API key" -H "Authorization: Bearer $key" -s "$dir/mcp.lua" "http://127.0.0.1:$port/mcp"
