#!/usr/bin/env bash
# h2bench.sh: HTTP/2 (h2c, prior knowledge) through Weir and nginx, side by
# side, with h2load (Debian nghttp2-client). Both proxy to one nginx that
# answers a 64-byte body over HTTP/1.1 keep-alive; each gateway runs on one
# core's worth (nginx: 1 worker; Weir: GOMAXPROCS=1). Reported per row:
# requests/s as h2load saw them, and the gateway's CPU time per request
# from /proc (user+system), which a shared machine disturbs far less than
# throughput.
#
#   scripts/h2bench.sh [requests]        (default 50000)
set -euo pipefail
N=${1:-50000}
WEIR=${WEIR_BIN:-$PWD/bin/weir}
for t in nginx h2load "$WEIR"; do command -v "$t" >/dev/null || { echo "h2bench: $t is needed" >&2; exit 1; }; done
D=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$D"; }
trap cleanup EXIT
UP=127.0.0.1:18601 NGX=127.0.0.1:18602 WRP=127.0.0.1:18603
body=$(printf 'x%.0s' $(seq 64))
common="worker_processes 1; daemon off; error_log $D/err.log; events { worker_connections 4096; }"
temps="client_body_temp_path $D; proxy_temp_path $D; fastcgi_temp_path $D; uwsgi_temp_path $D; scgi_temp_path $D; access_log off;"
cat > "$D/up.conf" <<EOC
$common pid $D/up.pid;
http { $temps server { listen $UP backlog=4096; keepalive_requests 100000000; location / { return 200 "$body"; } } }
EOC
cat > "$D/ngx.conf" <<EOC
$common pid $D/ngx.pid;
http { $temps
  upstream up { server $UP; keepalive 64; keepalive_requests 100000000; }
  server { listen $NGX http2; http2_max_concurrent_streams 128; keepalive_requests 100000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOC
cat > "$D/weir.yaml" <<EOC
listen: [{address: "$WRP", http2: true}]
server: {max_concurrent_streams: 128}
services: [{name: up, targets: [{url: "http://$UP"}]}]
routes: [{name: all, paths: ["/"], service: up}]
EOC
nginx -c "$D/up.conf" & pids+=($!)
nginx -c "$D/ngx.conf" & pids+=($!)
GOMAXPROCS=1 "$WEIR" run -c "$D/weir.yaml" >"$D/weir.log" 2>&1 & wpid=$!; pids+=($wpid)
sleep 1
ngxworker=$(pgrep -P "$(cat "$D/ngx.pid")" | head -1)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }   # clock ticks
tck=$(getconf CLK_TCK)
printf '%-6s %-8s %12s %16s\n' gateway streams "req/s" "CPU us/req"
for m in 1 100; do
  for gw in nginx weir; do
    if [ $gw = nginx ]; then addr=$NGX pid=$ngxworker; else addr=$WRP pid=$wpid; fi
    h2load -n 2000 -c 1 -m "$m" "http://$addr/" >/dev/null   # warm
    c0=$(cpu "$pid")
    out=$(h2load -n "$N" -c 1 -m "$m" "http://$addr/")
    c1=$(cpu "$pid")
    rps=$(echo "$out" | awk '/^finished in/ {print $4}')
    ok=$(echo "$out" | awk '/^status codes:/ {print $3}')
    [ "$ok" = "$N" ] || { echo "h2bench: $gw answered $ok of $N with 2xx" >&2; echo "$out" >&2; exit 1; }
    us=$(awk -v a="$c0" -v b="$c1" -v t="$tck" -v n="$N" 'BEGIN {printf "%.1f", (b-a)/t*1e6/n}')
    printf '%-6s %-8s %12s %16s\n' $gw $m "$rps" "$us"
  done
done
