package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestGatewayAnswersCarryOneDate: every answer the gateway makes itself
// (404, 405, 401, 429, a 400 for a malformed request) carries exactly one
// valid Date field on the wire (RFC 9110 §6.6.1), as a proxied answer
// does.
func TestGatewayAnswersCarryOneDate(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
consumers:
  - {name: alice, credentials: {key_auth: [{key: "k1"}]}}
routes:
  - {name: open, paths: ["/open"], methods: [GET], service: a}
  - {name: keyed, paths: ["/keyed"], service: a, plugins: [{name: key_auth}]}
  - {name: limited, paths: ["/limited"], service: a, plugins: [{name: rate_limit, config: {rate: 1, per: 1m, burst: 1}}]}
`, "UP", up))
	req := func(method, path string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
	}
	for _, tc := range []struct {
		name, raw string
		code      int
	}{
		{"proxied", req("GET", "/open"), 200},
		{"404", req("GET", "/nope"), 404},
		{"405", req("POST", "/open"), 405},
		{"401", req("GET", "/keyed"), 401},
		{"first of the limit", req("GET", "/limited"), 200},
		{"429", req("GET", "/limited"), 429},
		{"malformed", "GET /open HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", 400},
	} {
		r := sendRaw(t, w.Addr, []string{tc.raw}, 0, false, 10*time.Second)
		if r.err != nil || r.code != tc.code {
			t.Fatalf("%s: %d %v %q", tc.name, r.code, r.err, r.body)
		}
		dates := r.header.Values("Date")
		if len(dates) != 1 {
			t.Fatalf("%s: %d Date fields: %q", tc.name, len(dates), dates)
		}
		d, err := http.ParseTime(dates[0])
		if err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
			t.Fatalf("%s: Date %q (%v)", tc.name, dates[0], err)
		}
	}
}
