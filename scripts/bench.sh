#!/usr/bin/env bash
# Load benchmark: Weir side by side with nginx, HAProxy and no proxy, on
# loopback (see bench/README.md).
#
#   make bench               = bash scripts/bench.sh            (< 10 min)
#   make bench QUICK=1       = QUICK=1 bash scripts/bench.sh    (< 2 min)
#   bash scripts/bench.sh -only weir,nginx -rounds 1     (any weirbench flag)
#   make bench-tls           = bash scripts/bench.sh -tls -pprof  (TLS rows, ~4 min)
#   make bench-ws            = bash scripts/bench.sh -ws ...      (WebSocket rows, ~1 min)
#
# Installs what is missing from the OS packages (nginx, haproxy, wrk,
# redis-server, taskset) when run as root, or prints the command to run;
# builds bin/weir and the harness; runs it. What cannot be installed is
# skipped by the harness, which says so.
set -euo pipefail
cd "$(dirname "$0")/.."

# nginx and haproxy live in sbin on Debian.
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"

# tool:package pairs.
tools=(nginx:nginx haproxy:haproxy wrk:wrk redis-server:redis-server taskset:util-linux)
missing=()
for pair in "${tools[@]}"; do
  tool=${pair%%:*} pkg=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  cmd="apt-get update && apt-get install -y ${missing[*]}"
  if [[ ${BENCH_NO_INSTALL:-} == 1 ]]; then
    echo "bench: not installing ${missing[*]} (BENCH_NO_INSTALL=1); the harness will skip what needs them" >&2
  elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "bench: installing ${missing[*]}: $cmd" >&2
    # The harness runs private instances on free loopback ports; whatever
    # service the packages start on their default ports is left alone.
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2; then
      echo "bench: install failed; the harness will skip what is missing" >&2
    fi
  else
    echo "bench: missing ${missing[*]}; to install them run as root: $cmd" >&2
    echo "bench: going on; the harness will skip what is missing" >&2
  fi
fi

out_dir=bin
mkdir -p "$out_dir"
echo "bench: building bin/weir and the harness" >&2
go build -o "$out_dir/weir" ./cmd/weir
go build -o "$out_dir/weirbench" ./bench/cmd/weirbench

args=()
if [[ ${QUICK:-0} != 0 && ${QUICK:-} != "" ]]; then
  args+=(-quick)
fi
# BENCH_ARGS passes flags through make: make bench BENCH_ARGS="-only weir,nginx".
# shellcheck disable=SC2206
args+=(${BENCH_ARGS:-})
exec "$out_dir/weirbench" -weir "$out_dir/weir" "${args[@]}" "$@"
