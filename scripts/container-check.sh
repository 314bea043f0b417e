#!/usr/bin/env bash
# What can be proven of the container without a Docker daemon: the Dockerfile's build steps, in a
# clean directory (npm ci, build; then npm ci --omit=dev with the built dist beside it, as the
# runtime stage has them), and the image's command (`node dist/main.js` with the Dockerfile's
# environment) started against this machine's PostgreSQL and Redis: the HEALTHCHECK command must
# pass, /ready must see both stores, and SIGTERM must stop it with exit code 0.
# Not proven here: pulling node:24-slim, the image's user and file ownership, compose networking.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
PG_URL="${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
work="$(mktemp -d -t chassis-container-XXXXXX)"
schema="container_$(date +%s)_$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  psql "$PG_URL" -q -c "drop schema if exists $schema cascade" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build stage (npm ci, npm run build) in $work/build"
mkdir -p "$work/build" "$work/app"
cp "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$work/build/"
cp -r "$repo/src" "$work/build/src"
(cd "$work/build" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error && npm run build --silent)

echo "== deps stage (production dependencies only) and runtime layout in $work/app"
cp "$repo/package.json" "$repo/package-lock.json" "$work/app/"
if [ "${FULL_DEPS_STAGE:-0}" = 1 ]; then
  # Exactly the Dockerfile's deps stage (compiles the native modules a second time: slow here).
  (cd "$work/app" && npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error)
else
  # The same tree from the same lock file: the build stage's modules, pruned to production ones.
  cp -a "$work/build/node_modules" "$work/app/node_modules"
  (cd "$work/app" && npm prune --omit=dev --no-audit --no-fund --loglevel=error)
fi
cp -r "$work/build/dist" "$work/app/dist"
for dev in vitest typescript tsx; do
  if [ -e "$work/app/node_modules/$dev" ]; then echo "dev dependency $dev is in the runtime image"; exit 1; fi
done

echo "== the image's command against PostgreSQL (schema $schema) and Redis"
psql "$PG_URL" -q -c "create schema $schema"
port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
mkdir -p "$work/app/data" "$work/app/config"
(
  cd "$work/app"
  # The Dockerfile's ENV, but on loopback (a shared machine) and with this machine's stores.
  exec env -i PATH="$PATH" NODE_ENV=production HOST=127.0.0.1 PORT="$port" \
    DATABASE_URL="$PG_URL?options=-c%20search_path%3D$schema" REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="$schema:" \
    MCP_CONFIG_PATH=/app/config/mcp_config.json METRICS_ENABLED=true SHUTDOWN_GRACE_SECONDS=5 \
    node dist/main.js
) >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.2
done

echo "== HEALTHCHECK command"
PORT="$port" node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
echo "== /ready"
ready="$(curl -fs "http://127.0.0.1:$port/ready")"
echo "$ready"
echo "$ready" | grep -q '"status":"ready"' && echo "$ready" | grep -q '"db":true' && echo "$ready" | grep -q '"redis":true'
metrics="$(curl -fs "http://127.0.0.1:$port/metrics")"
grep -q '^chassis_http_requests_total{' <<<"$metrics" || { echo "/metrics has no chassis_http_requests_total"; exit 1; }

echo "== SIGTERM reaches node and it exits 0"
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
if [ "$code" != 0 ]; then echo "exit code $code"; cat "$work/server.log"; exit 1; fi
grep -q '"signal":"SIGTERM"' "$work/server.log" || { echo "no shutdown line in the log"; cat "$work/server.log"; exit 1; }
echo "container check passed"
