#!/usr/bin/env bash
# Runs the public HTTP cache test suite (npm package http-cache-tests)
# against Weir with the cache plugin's memory store, and fails when the
# number of required tests passed falls below the floor in
# scripts/cache-conformance.floor. Everything runs on 127.0.0.1.
#
#   bash scripts/cache-conformance.sh            # run, print the score
#   FLOOR=0 bash scripts/cache-conformance.sh    # report only
#   ID=freshness-max-age bash scripts/cache-conformance.sh   # one test, verbose
#   CACHE_CONFIG='{store: memory, cache_set_cookie: true}' FLOOR=0 bash scripts/cache-conformance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VERSION=0.4.5
CACHE_DIR=${CACHE_DIR:-$ROOT/.cache/http-cache-tests}
FLOOR=${FLOOR:-$(cat scripts/cache-conformance.floor)}
CACHE_CONFIG=${CACHE_CONFIG:-"{store: memory}"}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "cache-conformance: node and npm are required (apt-get install -y nodejs npm)"; exit 1
fi
if [ ! -f "$CACHE_DIR/node_modules/http-cache-tests/package.json" ]; then
  mkdir -p "$CACHE_DIR"
  (cd "$CACHE_DIR" && npm install --no-audit --no-fund --silent "http-cache-tests@$VERSION" >/dev/null 2>&1) \
    || { echo "cache-conformance: npm install http-cache-tests@$VERSION failed"; exit 1; }
fi
SUITE=$CACHE_DIR/node_modules/http-cache-tests
[ -x bin/weir ] || go build -o bin/weir ./cmd/weir

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ORIGIN_PORT=$(free_port); WEIR_PORT=$(free_port); ADMIN_PORT=$(free_port)
WORK=$(mktemp -d)
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
PIDS=()
trap cleanup EXIT

(cd "$SUITE" && npm_config_protocol=http npm_config_port=$ORIGIN_PORT npm_config_pidfile=$WORK/server.pid exec node server/server.mjs >"$WORK/origin.log" 2>&1) &
PIDS+=($!)
sed -e "s/{{WEIR_PORT}}/$WEIR_PORT/; s/{{ADMIN_PORT}}/$ADMIN_PORT/; s/{{ORIGIN_PORT}}/$ORIGIN_PORT/; s|{{CACHE_CONFIG}}|$CACHE_CONFIG|" \
  configs/cache-conformance.yaml > "$WORK/weir.yaml"
bin/weir run -c "$WORK/weir.yaml" >"$WORK/weir.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do  # wait for both to answer
  if curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/status" && curl -s -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/"; then break; fi
  sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/" || { echo "cache-conformance: the test origin did not start:"; cat "$WORK/origin.log"; exit 1; }

if [ -n "${ID:-}" ]; then
  (cd "$SUITE" && npm_config_base="http://127.0.0.1:$WEIR_PORT" npm_config_id="$ID" node --no-warnings cli.mjs)
  exit 0
fi
(cd "$SUITE" && npm_package_config_id="" npm_config_base="http://127.0.0.1:$WEIR_PORT" timeout 600 node --no-warnings cli.mjs) > "$WORK/results.json"
mkdir -p bench/results
cp "$WORK/results.json" bench/results/cache-conformance.json
cat > "$WORK/count.mjs" <<'JS'
import fs from 'fs'
const [suite, file] = process.argv.slice(2)
const results = JSON.parse(fs.readFileSync(file))
const { default: suites } = await import(suite + '/tests/index.mjs')
let required = 0, passed = 0; const failed = []
for (const s of suites) for (const t of s.tests) {
  if ((t.kind || 'required') !== 'required') continue
  required++
  if (results[t.id] === true) passed++; else failed.push(t.id)
}
console.log(JSON.stringify({ required, passed, failed }))
JS
SUMMARY=$(node "$WORK/count.mjs" "$SUITE" "$WORK/results.json")
PASSED=$(echo "$SUMMARY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["passed"])')
REQUIRED=$(echo "$SUMMARY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["required"])')
echo "$SUMMARY" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("failed required tests:", " ".join(d["failed"]) or "none")'
echo "cache conformance (http-cache-tests $VERSION, memory store): $PASSED/$REQUIRED required tests passed (3 of them are browser-only and never run against a proxy) (floor $FLOOR; squid 4.13: 134, apache: 124, varnish: 118, nginx: 96)"
if [ "$PASSED" -lt "$FLOOR" ]; then
  echo "cache-conformance: score $PASSED is below the floor $FLOOR"; exit 1
fi
