package admin

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// metricHelp is the # HELP text of every weir_* family: the library
// writes "# HELP name" with no text (it has no place to keep one), so
// /metrics fills it in from this table. A family missing here fails
// TestMetricsBoundedAndDescribed (e2e), which scrapes a running gateway.
var metricHelp = map[string]string{
	"weir_requests_total":                 "Requests answered, by route, service and status (route _none: no route matched).",
	"weir_request_duration_seconds":       "Time from a request's arrival to its answer being ready, by route.",
	"weir_proxy_overhead_seconds":         "The gateway's own share of a request's time (total minus upstream), by route.",
	"weir_upstream_duration_seconds":      "Time of one upstream try, by service.",
	"weir_upstream_target_healthy":        "1 when the target is healthy (active and passive checks), else 0.",
	"weir_circuit_open":                   "1 while the target's circuit breaker is open, else 0.",
	"weir_config_reloads_total":           "Config reloads (file, signal or admin API), by result.",
	"weir_config_last_reload_successful":  "1 when the last reload succeeded, else 0.",
	"weir_accept_errors_total":            "Accepts refused by the kernel (out of descriptors or memory), by reason.",
	"weir_access_log_dropped_total":       "Access-log lines dropped because the writer's queue was full.",
	"weir_websocket_connections":          "Open WebSocket tunnels, by route.",
	"weir_websocket_bytes_total":          "Bytes relayed through WebSocket tunnels, by route and direction (upstream: client to target; downstream: target to client).",
	"weir_tracing_spans_exported_total":   "Trace spans the OTLP exporter delivered.",
	"weir_tracing_spans_dropped_total":    "Trace spans dropped, by reason (queue_full: the export queue was full; export_failed: the collector refused or was unreachable after retries).",
	"weir_log_phase_dropped_total":        "Deferred log-phase calls (Lua log functions) skipped because their queue was full.",
	"weir_consumer_requests_total":        "Requests per consumer and status class (analytics.consumers; consumers beyond max_consumers count as _other).",
	"weir_auth_anonymous_total":           "Requests let through as anonymous by an auth plugin.",
	"weir_auth_failures_total":            "Requests refused by an auth plugin.",
	"weir_cache_requests_total":           "Cache lookups by route and result (hit, miss, stale, bypass, revalidated).",
	"weir_cache_evictions_total":          "Cache entries evicted to stay within the memory budget.",
	"weir_cache_store_errors_total":       "Cache store (Redis) operations that failed.",
	"weir_cors_disallowed_origin_total":   "CORS requests from an origin the route does not allow.",
	"weir_cors_preflight_total":           "CORS preflight requests answered.",
	"weir_discovery_errors_total":         "DNS discovery resolutions that failed.",
	"weir_introspection_cache_total":      "OAuth2 introspection cache lookups.",
	"weir_introspection_duration_seconds": "Time of one OAuth2 token introspection call.",
	"weir_introspection_requests_total":   "OAuth2 introspection calls.",
	"weir_ip_restriction_rejected_total":  "Requests refused by ip_restriction.",
	"weir_jwt_cache_total":                "JWT verification cache lookups.",
	"weir_jwt_jwks_fetches_total":         "JWKS fetches.",
	"weir_lua_body_filter_skipped_total":  "Lua body_filter calls skipped (streamed or oversized bodies).",
	"weir_lua_conf_changed_total":         "Lua phase calls that changed conf (their VM was replaced).",
	"weir_lua_errors_total":               "Lua script errors.",
	"weir_lua_memory_limit_total":         "Lua phase calls stopped by memory_limit_mb.",
	"weir_lua_timeouts_total":             "Lua phase calls stopped by their timeout.",
	"weir_ratelimit_coalesced_total":      "Rate-limit decisions that rode on a Redis call another request made for the same key.",
	"weir_ratelimit_decisions_total":      "Rate-limit decisions.",
	"weir_ratelimit_rejected_total":       "Requests refused 429 by rate_limit.",
	"weir_ratelimit_store_errors_total":   "Rate-limit store (Redis) calls that failed.",
	"weir_ratelimit_late_answers_total":   "Answers to rate-limit Redis calls that had timed out, by result (granted tokens are given back).",
	"weir_tls_certificate_expiry_seconds": "Seconds until a served certificate expires.",
	"weir_tls_handshakes_total":           "TLS handshakes on the listeners.",
	"weir_tls_plain_http_requests_total":  "Plain HTTP requests sent to a TLS listener (answered 400).",
	"weir_transformer_json_bodies_total":  "JSON bodies the transformer plugins rewrote.",
	"weir_wasm_errors_total":              "WASM plugin errors (traps, ABI misuse).",
	"weir_wasm_timeouts_total":            "WASM plugin calls stopped by their timeout.",
}

// wasmGuestHelp describes the families a WASM guest defines itself.
const wasmGuestHelp = "A metric the route's WASM plugin defines (proxy_define_metric)."

// writeMetrics writes the Prometheus text format with the help texts
// filled in.
func writeMetrics(w io.Writer) {
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, true)
	bw := bufio.NewWriter(w)
	for line := range bytes.Lines(buf.Bytes()) {
		if name, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			name = bytes.TrimSuffix(name, []byte("\n"))
			if bytes.IndexByte(name, ' ') < 0 {
				if h := helpFor(string(name)); h != "" {
					bw.WriteString("# HELP ")
					bw.Write(name)
					bw.WriteByte(' ')
					bw.WriteString(h)
					bw.WriteByte('\n')
					continue
				}
			}
		}
		bw.Write(line)
	}
	_ = bw.Flush()
}

func helpFor(name string) string {
	if h := metricHelp[name]; h != "" {
		return h
	}
	if strings.HasPrefix(name, "weir_wasm_guest_") {
		return wasmGuestHelp
	}
	return ""
}
