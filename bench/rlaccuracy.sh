#!/usr/bin/env bash
# Rate-limit accuracy on a loaded gateway with a slow Redis (issue 17,
# item 5): two real weir processes share one private redis-server through
# a proxy that delays every command by a random 0..JITTER; the test
# saturates both (16 keep-alive connections) on one key limited to 200 per
# 2s (policy: redis, on_store_failure: local, nodes: 2, timeout 20ms) for
# 8s and counts the 2xx against burst + rate * elapsed.
#
#   make bench-rlaccuracy                    # the same, with bin/weir
#   bash bench/rlaccuracy.sh                 # jitters 0 10ms 22ms 40ms, 3 runs each
#   WEIR_RLACC_RUN=4s bash bench/rlaccuracy.sh   # shorter runs
#   JITTERS="22ms" PAUSES= RUNS=5 bash bench/rlaccuracy.sh
#   PAUSES="0/60ms 10ms/30ms" bash bench/rlaccuracy.sh   # Redis also stopped
#                                            # for 60ms (30ms) every 300ms
#   WEIR_BIN=/path/to/weir bash bench/rlaccuracy.sh   # another build
#
# It is e2e.TestRedisRateLimitAccurateUnderLoadWithSlowRedis, run at
# several delays; a run whose admissions leave 97..101% of the limit fails
# (FAIL in the last column). Needs redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
JITTERS=${JITTERS-"0 10ms 22ms 40ms"}
PAUSES=${PAUSES-"0/60ms"}
RUNS=${RUNS:-3}
if [ -z "${WEIR_BIN:-}" ]; then
	mkdir -p bin
	go build -o bin/weir ./cmd/weir
	WEIR_BIN=$PWD/bin/weir
fi
export WEIR_BIN
printf '| Redis delay | requests/s | admitted | limit (burst + rate*T) | admitted/limit | decisions without Redis | store errors | late grants given back | test |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
# Each case: "delay" or "delay/pause" (Redis stopped for pause every 300ms).
for c in $JITTERS $PAUSES; do
	j=${c%%/*} p=
	[[ $c == */* ]] && p=${c#*/}
	for _ in $(seq "$RUNS"); do
		out=$(WEIR_RLACC_JITTER=$j WEIR_RLACC_PAUSE=$p go test ./e2e/ -run '^TestRedisRateLimitAccurateUnderLoadWithSlowRedis$' -count=1 -v 2>&1 || true)
		line=$(grep -o 'RLACC .*' <<<"$out" | head -1)
		verdict=PASS
		grep -q -- '--- FAIL' <<<"$out" && verdict=FAIL
		if [ -z "$line" ]; then
			printf '| 0..%s%s | - | - | - | - | - | - | - | %s (no result) |\n' "$j" "${p:+, paused $p/300ms}" "$verdict"
			continue
		fi
		get() { grep -o "$1=[^ ]*" <<<"$line" | cut -d= -f2; }
		printf '| 0..%s%s | %s | %s | %s | %s%% | %s | %s | %s | %s |\n' "$j" "${p:+, paused $p/300ms}" "$(get rps)" "$(get admitted)" \
			"$(get limit)" "$(get ratio)" "$(get fallback)" "$(get store_errors)" "$(get late_granted)" "$verdict"
	done
done
