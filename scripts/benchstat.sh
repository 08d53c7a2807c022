#!/usr/bin/env bash
# Go micro-benchmarks before/after a change, compared with benchstat.
#
#   scripts/benchstat.sh run [FILE]        run the benchmarks into FILE
#                                          (default bench/results/micro-<commit>.txt)
#   scripts/benchstat.sh compare OLD NEW   benchstat OLD NEW
#   scripts/benchstat.sh                   run into the default file, then compare it
#                                          with the previous micro-*.txt, if any
#
# Env: PKGS (default "./proxy/... ./plugins/..."), COUNT (default 6),
# BENCH (the -bench regexp, default "."), BENCHTIME (default: go's 1s).
# A typical before/after:
#   git stash; scripts/benchstat.sh run /tmp/old.txt; git stash pop
#   scripts/benchstat.sh run /tmp/new.txt; scripts/benchstat.sh compare /tmp/old.txt /tmp/new.txt
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=${PKGS:-./proxy/... ./plugins/...}
count=${COUNT:-6}
bench=${BENCH:-.}
results=bench/results

run() {
  local file=$1
  mkdir -p "$(dirname "$file")"
  local extra=()
  [[ -n ${BENCHTIME:-} ]] && extra+=(-benchtime "$BENCHTIME")
  echo "benchstat: go test -run '^\$' -bench '$bench' -benchmem -count $count ${extra[*]} $pkgs > $file" >&2
  # shellcheck disable=SC2086
  go test -run '^$' -bench "$bench" -benchmem -count "$count" "${extra[@]}" $pkgs | tee "$file.tmp" >&2
  mv "$file.tmp" "$file"
  echo "benchstat: wrote $file" >&2
}

compare() {
  # benchstat comes through the module proxy, pinned by @latest at run time;
  # it is not a dependency of the module.
  go run golang.org/x/perf/cmd/benchstat@latest "$1" "$2"
}

case ${1:-} in
  run)
    run "${2:-$results/micro-$(git rev-parse --short HEAD).txt}"
    ;;
  compare)
    [[ $# -eq 3 ]] || { echo "usage: $0 compare OLD NEW" >&2; exit 2; }
    compare "$2" "$3"
    ;;
  "")
    new=$results/micro-$(git rev-parse --short HEAD).txt
    prev=$(ls -t "$results"/micro-*.txt 2>/dev/null | grep -vxF "$new" | head -1 || true)
    run "$new"
    if [[ -n $prev ]]; then
      compare "$prev" "$new"
    else
      echo "benchstat: no earlier bench/results/micro-*.txt to compare with; showing this run" >&2
      go run golang.org/x/perf/cmd/benchstat@latest "$new"
    fi
    ;;
  *)
    sed -n '2,17p' "$0" >&2
    exit 2
    ;;
esac
