package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The access log (README.md, "Access log"), checked on the lines the real
// binary writes.

// accessLogConfig is a gateway with an access log at {{LOG}}: route api
// identifies consumers (key_auth), limits them (rate_limit), caches
// (cache) and adds a field from Lua; route quiet is not logged; route
// fail's upstream answers 500.
const accessLogConfig = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: s3cret}
server: {trusted_proxies: ["127.0.0.1/32"]}
access_log: {path: "{{LOG}}", format: {{FORMAT}}{{EXTRA}}}
services:
  - {name: a, targets: [{url: "http://{{UP}}"}]}
consumers:
  - {name: alice, credentials: {key_auth: [{key: "alice-key-1"}]}}
routes:
  - name: api
    paths: ["/api"]
    service: a
    plugins:
      - {name: key_auth}
      - {name: rate_limit, config: {rate: 1000, per: 1s, burst: 1000, key: consumer}}
      - {name: cache, config: {store: memory, default_ttl: 60s}}
      - name: lua
        config:
          source: |
            function access()
              weir.log.field("tenant", "blue \"team\"\n")
            end
  - {name: quiet, paths: ["/quiet"], service: a, access_log: false}
  - {name: fail, paths: ["/fail"], service: a}
`

// startAccessLogged starts an upstream (200 "hello" after 20ms; 500 on
// /fail) and a gateway logging in format to a file, and returns both.
func startAccessLogged(t *testing.T, format, extra string) (*weir, string) {
	t.Helper()
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		time.Sleep(20 * time.Millisecond)
		if strings.HasPrefix(string(rc.Path()), "/fail") {
			rc.SetStatusCode(500)
		}
		rc.Response.Header.Set("Cache-Control", "no-store")
		rc.SetBodyString("hello")
	})
	log := filepath.Join(t.TempDir(), "access.log")
	cfg := strings.NewReplacer("{{LOG}}", log, "{{FORMAT}}", format, "{{EXTRA}}", extra, "{{UP}}", up).Replace(accessLogConfig)
	return startWeir(t, cfg), log
}

// logLines waits until the file holds at least n lines and returns them.
func logLines(t *testing.T, file string, n int) []string {
	t.Helper()
	var lines []string
	ok := waitUntil(5*time.Second, 10*time.Millisecond, func() bool {
		b, _ := os.ReadFile(file)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) == 0 {
			lines = nil
		}
		return len(lines) >= n
	})
	if !ok {
		t.Fatalf("%s holds %d lines, want %d:\n%s", file, len(lines), n, strings.Join(lines, "\n"))
	}
	return lines
}

// exchangeOnce sends raw on a new connection and returns the answer.
func exchangeOnce(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, _, err := connExchange(c, bufio.NewReader(c), raw)
	if resp == nil {
		t.Fatal(err)
	}
	return resp
}

// The hostile request: a user agent with quotes, a backslash, non-ASCII
// and invalid UTF-8 bytes, and a referer whose value tries to end the
// line with an obs-fold continuation.
const (
	hostileUA   = "evil\" \"agent\\ caf\xc3\xa9 \xff"
	hostileReq  = "GET /api/items?x=1&y=%22 HTTP/1.1\r\nHost: api.example\r\nX-API-Key: alice-key-1\r\nX-Forwarded-For: 203.0.113.7\r\nUser-Agent: " + hostileUA + "\r\nReferer: http://ref.example/\r\n\r\n"
	badPathReq  = "GET /api/%22forged%22%0d%0a%7B%22status%22:200%7D HTTP/1.1\r\nHost: api.example\r\n\r\n"
	quietReq    = "GET /quiet HTTP/1.1\r\nHost: api.example\r\n\r\n"
	failReq     = "GET /fail HTTP/1.1\r\nHost: api.example\r\nUser-Agent: ua\r\n\r\n"
	unroutedReq = "GET /nope HTTP/1.1\r\nHost: api.example\r\n\r\n"
)

func TestAccessLogJSONFields(t *testing.T) {
	w, file := startAccessLogged(t, "json", "")
	start := time.Now()
	resp := exchangeOnce(t, w.Addr, hostileReq)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	id := resp.Header.Get("X-Request-Id")
	if bad := exchangeOnce(t, w.Addr, badPathReq); bad.StatusCode != 400 {
		t.Fatalf("forged path: status %d, want 400", bad.StatusCode)
	}
	// Header values that try to carry a line break: a bare CR, and an
	// obs-fold continuation line. Whatever the gateway answers, each is
	// one line of JSON.
	for _, raw := range []string{
		"GET /api/a HTTP/1.1\r\nHost: api.example\r\nX-API-Key: alice-key-1\r\nUser-Agent: a\rb\r\n\r\n",
		"GET /api/b HTTP/1.1\r\nHost: api.example\r\nX-API-Key: alice-key-1\r\nUser-Agent: a\r\n {\"forged\":1}\r\n\r\n",
	} {
		exchangeOnce(t, w.Addr, raw)
	}
	exchangeOnce(t, w.Addr, quietReq)
	exchangeOnce(t, w.Addr, unroutedReq)

	lines := logLines(t, file, 5)
	if len(lines) != 5 {
		t.Fatalf("want 5 lines (the quiet route logs nothing), got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not one JSON object: %v\n%s", i+1, err, l)
		}
		if i == 2 || i == 3 {
			t.Logf("line-break header answered %v: user_agent %q", m["status"], m["user_agent"])
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("line 1 is not JSON: %v\n%s", err, lines[0])
	}
	ts, err := time.Parse(time.RFC3339Nano, m["time"].(string))
	if err != nil || ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
		t.Errorf("time %v (%v), want the request's start", m["time"], err)
	}
	want := map[string]any{
		"request_id": id, "client_ip": "203.0.113.7", "method": "GET", "host": "api.example",
		"path": "/api/items?x=1&y=%22", "status": 200.0, "bytes_sent": 5.0, "route": "api", "service": "a",
		"consumer": "alice", "user_agent": strings.ToValidUTF8(hostileUA, "\ufffd"), "referer": "http://ref.example/",
		"cache": "miss", "ratelimit": "allowed", "tenant": "blue \"team\"\n",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if tg, _ := m["target"].(string); !strings.HasPrefix(tg, "http://127.0.0.1:") {
		t.Errorf("target = %#v, want the upstream's URL", m["target"])
	}
	up, _ := m["upstream_ms"].(float64)
	dur, _ := m["duration_ms"].(float64)
	if up < 20 || dur < up {
		t.Errorf("upstream_ms %v, duration_ms %v: want upstream >= 20 (the upstream sleeps 20ms) and duration >= upstream", up, dur)
	}
	// Keys in the configured order, then the plugin's.
	keys := regexp.MustCompile(`"([a-z_]+)":`).FindAllStringSubmatch(lines[0], -1)
	var order []string
	for _, k := range keys {
		order = append(order, k[1])
	}
	wantOrder := "time request_id client_ip method host path status bytes_sent duration_ms upstream_ms route service target consumer user_agent referer cache ratelimit tenant"
	if got := strings.Join(order, " "); got != wantOrder {
		t.Errorf("keys:\n%s\nwant\n%s", got, wantOrder)
	}

	// The forged path is one line, its bytes kept as the client sent them.
	var bad map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &bad); err != nil {
		t.Fatalf("line 2 is not JSON: %v\n%s", err, lines[1])
	}
	if bad["status"] != 400.0 || bad["path"] != "/api/%22forged%22%0d%0a%7B%22status%22:200%7D" || bad["route"] != "" {
		t.Errorf("forged-path line: %s", lines[1])
	}
	var none map[string]any
	if err := json.Unmarshal([]byte(lines[4]), &none); err != nil || none["status"] != 404.0 || none["path"] != "/nope" {
		t.Errorf("unrouted line: %s (%v)", lines[2], err)
	}
}

// combinedLine parses the Apache/nginx combined format.
var combinedLine = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$`)

func TestAccessLogCombined(t *testing.T) {
	w, file := startAccessLogged(t, "combined", "")
	start := time.Now()
	if resp := exchangeOnce(t, w.Addr, hostileReq); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	exchangeOnce(t, w.Addr, badPathReq)
	exchangeOnce(t, w.Addr, failReq)
	lines := logLines(t, file, 3)
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	type want struct{ ip, user, req, status, bytes, ref, ua string }
	for i, wl := range []want{
		{"203.0.113.7", "alice", "GET /api/items?x=1&y=%22 HTTP/1.1", "200", "5", "http://ref.example/",
			`evil\x22 \x22agent\x5c caf\xc3\xa9 \xff`},
		{"127.0.0.1", "-", "GET /api/%22forged%22%0d%0a%7B%22status%22:200%7D HTTP/1.1", "400", "", "-", "-"},
		{"127.0.0.1", "-", "GET /fail HTTP/1.1", "500", "5", "-", "ua"},
	} {
		f := combinedLine.FindStringSubmatch(lines[i])
		if f == nil {
			t.Errorf("line %d is not combined format: %q", i+1, lines[i])
			continue
		}
		ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", f[3])
		if err != nil || ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
			t.Errorf("line %d: time %q (%v)", i+1, f[3], err)
		}
		got := want{f[1], f[2], f[4], f[5], f[6], f[7], f[8]}
		if wl.bytes == "" {
			got.bytes = "" // the gateway's JSON error: its size is the gateway's business
		}
		if got != wl {
			t.Errorf("line %d:\n got %+v\nwant %+v\n%s", i+1, got, wl, lines[i])
		}
	}
}
