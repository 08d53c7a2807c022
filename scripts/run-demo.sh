#!/usr/bin/env bash
# Starts the demo upstream and the gateway on configs/demo.yaml; Ctrl-C
# stops both. Used by `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/weir echo --listen 127.0.0.1:9001 --name demo-upstream &
ECHO_PID=$!
trap 'kill $ECHO_PID 2>/dev/null || true' EXIT
cat <<'MSG'

Weir is starting on http://127.0.0.1:8080 (admin and status page on http://127.0.0.1:8081).
Try:
  curl -i http://127.0.0.1:8080/echo/hello?greeting=hi        # proxied to the echo upstream, path stripped
  curl -i http://127.0.0.1:8080/profile/42                    # one answer aggregated from two upstream calls
  curl -s http://127.0.0.1:8081/metrics | grep weir_requests   # Prometheus metrics
Open http://127.0.0.1:8081/ for the live status page. Ctrl-C stops everything.

MSG
bin/weir run -c configs/demo.yaml
