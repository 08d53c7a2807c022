package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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
  - {name: open, paths: ["/ok"], service: a}
`

// startAccessLogged starts an upstream (200 "hello", after 20ms on /api;
// 500 on /fail) and a gateway logging in format to a file, and returns both.
func startAccessLogged(t *testing.T, format, extra string) (*weir, string) {
	t.Helper()
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		if strings.HasPrefix(string(rc.Path()), "/api") {
			time.Sleep(20 * time.Millisecond)
		}
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

// seqPaths extracts the N of every "/ok/N" in lines, in order.
func seqPaths(lines []string) []int {
	re := regexp.MustCompile(`/ok/(\d+)`)
	var out []int
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// loadSeq sends GET /ok/0, /ok/1, ... one after another until stop is
// closed and returns how many were answered. Every answer must be 200.
func loadSeq(t *testing.T, addr string, stop <-chan struct{}, sent *atomic.Int64) {
	c := newClient(addr)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if code, _, _ := get(t, c, "/ok/"+strconv.Itoa(i), nil); code != 200 {
			t.Errorf("/ok/%d: status %d", i, code)
			return
		}
		sent.Store(int64(i + 1))
	}
}

// expectSeq checks that got is 0..n-1, each once, in order.
func expectSeq(t *testing.T, what string, got []int, from, n int) {
	t.Helper()
	if len(got) != n-from {
		t.Fatalf("%s: %d lines, want %d (requests %d..%d)", what, len(got), n-from, from, n-1)
	}
	for i, v := range got {
		if v != from+i {
			t.Fatalf("%s: line %d is request %d, want %d", what, i+1, v, from+i)
		}
	}
}

// logrotate's convention: rename the file, then SIGUSR1. Lines written
// before the reopen go to the renamed file, later ones to a new file at
// the configured path; none is lost, under load.
func TestAccessLogReopenOnSIGUSR1(t *testing.T) {
	w, file := startAccessLogged(t, "json", "")
	stop := make(chan struct{})
	var sent atomic.Int64
	done := make(chan struct{})
	go func() { defer close(done); loadSeq(t, w.Addr, stop, &sent) }()
	waitUntil(5*time.Second, 5*time.Millisecond, func() bool { return sent.Load() >= 50 })
	if err := os.Rename(file, file+".1"); err != nil {
		t.Fatal(err)
	}
	afterRename := sent.Load()
	waitUntil(5*time.Second, 5*time.Millisecond, func() bool { return sent.Load() >= afterRename+50 })
	if err := w.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(5*time.Second, 5*time.Millisecond, func() bool { _, err := os.Stat(file); return err == nil }) {
		t.Fatal("no new file after SIGUSR1")
	}
	reopened := sent.Load()
	waitUntil(5*time.Second, 5*time.Millisecond, func() bool { return sent.Load() >= reopened+50 })
	close(stop)
	<-done
	n := int(sent.Load())
	waitUntil(5*time.Second, 10*time.Millisecond, func() bool {
		a, _ := os.ReadFile(file + ".1")
		b, _ := os.ReadFile(file)
		return strings.Count(string(a), "\n")+strings.Count(string(b), "\n") >= n
	})
	a, _ := os.ReadFile(file + ".1")
	b, _ := os.ReadFile(file)
	old, cur := seqPaths(strings.Split(string(a), "\n")), seqPaths(strings.Split(string(b), "\n"))
	if len(old) < int(afterRename)+50 || len(cur) == 0 {
		t.Fatalf("rotated file %d lines, new file %d: want the earlier lines (>= %d) in the rotated one and the later in the new", len(old), len(cur), afterRename+50)
	}
	expectSeq(t, "rotated file", old, 0, len(old))
	expectSeq(t, "new file", cur, len(old), n)
	t.Logf("%d requests: %d lines in the rotated file, %d in the new one", n, len(old), len(cur))
}

// A sink nobody reads (a FIFO whose reader never reads) fills the pipe,
// then the writer's queue; requests go on being answered at once and the
// lines that find the queue full are counted.
func TestAccessLogDropsWhenSinkBlocks(t *testing.T) {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) { rc.SetBodyString("hello") })
	fifo := filepath.Join(t.TempDir(), "access.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The reader that never reads: opening the FIFO for writing waits for one.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := strings.NewReplacer("{{LOG}}", fifo, "{{FORMAT}}", "json", "{{EXTRA}}", ", buffer: 16", "{{UP}}", up).Replace(accessLogConfig)
	cfg = strings.Replace(cfg, "server: {", "server: {drain_timeout: 1s, drain_grace: 100ms, ", 1)
	w := startWeir(t, cfg)
	c := newClient(w.Addr)
	var slowest time.Duration
	const n = 3000 // ~1 MB of lines: far more than the pipe, the writer's buffer and the queue hold
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if code, _, _ := get(t, c, "/ok/"+strconv.Itoa(i), nil); code != 200 {
			t.Fatalf("request %d: status %d", i, code)
		}
		slowest = max(slowest, time.Since(t0))
	}
	dropped := -1.0
	_, _, body := adminRequest(t, w, "GET", "/metrics", "", nil)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, "weir_access_log_dropped_total "); ok {
			dropped, _ = strconv.ParseFloat(v, 64)
		}
	}
	t.Logf("%d requests, slowest %v, %v lines dropped", n, slowest, dropped)
	if dropped < n/2 {
		t.Errorf("weir_access_log_dropped_total = %v, want most of the %d lines", dropped, n)
	}
	if slowest > time.Second {
		t.Errorf("slowest request took %v while the sink was stuck: the log held requests back", slowest)
	}
	// Nor does it hold the stop back beyond drain_timeout.
	t0 := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !w.waitExit(5 * time.Second) {
		t.Fatal("weir did not stop within 5s (drain_timeout 1s) with its access log stuck")
	}
	t.Logf("stopped in %v", time.Since(t0))
}

// sample: 0 logs no answer below 400 and every answer from 400 up;
// sample: 0.5 about half of the successes.
func TestAccessLogSample(t *testing.T) {
	for _, tc := range []struct {
		sample   string
		min, max int // successes logged out of 200
	}{{"0", 0, 0}, {"0.5", 60, 140}} {
		t.Run(tc.sample, func(t *testing.T) {
			w, file := startAccessLogged(t, "json", ", sample: "+tc.sample)
			c := newClient(w.Addr)
			for i := 0; i < 200; i++ {
				get(t, c, "/ok/"+strconv.Itoa(i), nil)
			}
			for i := 0; i < 5; i++ {
				get(t, c, "/fail", nil)
				get(t, c, "/nope", nil)
			}
			exchangeOnce(t, w.Addr, badPathReq)
			// The errors come last: once they are in, so is every success before them.
			lines := logLines(t, file, 11)
			waitUntil(time.Second, 20*time.Millisecond, func() bool { return len(logLines(t, file, 11)) > len(lines) })
			lines = logLines(t, file, 11)
			ok := len(seqPaths(lines))
			errors := 0
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatal(err)
				}
				if st, _ := m["status"].(float64); st >= 400 {
					errors++
				}
			}
			if errors != 11 {
				t.Errorf("%d error lines, want all 11", errors)
			}
			if ok < tc.min || ok > tc.max {
				t.Errorf("%d of 200 successes logged, want %d..%d", ok, tc.min, tc.max)
			}
		})
	}
}

// A reload that moves the log to another file and format switches
// between two lines: every request is in one file or the other, once.
func TestAccessLogReloadKeepsEveryLine(t *testing.T) {
	w, file := startAccessLogged(t, "json", "")
	second := filepath.Join(filepath.Dir(file), "second.log")
	stop := make(chan struct{})
	var sent atomic.Int64
	done := make(chan struct{})
	go func() { defer close(done); loadSeq(t, w.Addr, stop, &sent) }()
	waitUntil(5*time.Second, 5*time.Millisecond, func() bool { return sent.Load() >= 50 })
	b, _ := os.ReadFile(w.File)
	w.write(strings.Replace(strings.Replace(string(b), file, second, 1), "format: json", "format: combined", 1))
	v := w.configVersion()
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	w.waitVersion(v + 1)
	at := sent.Load()
	waitUntil(5*time.Second, 5*time.Millisecond, func() bool { return sent.Load() >= at+50 })
	close(stop)
	<-done
	n := int(sent.Load())
	var first, next []string
	waitUntil(5*time.Second, 10*time.Millisecond, func() bool {
		a, _ := os.ReadFile(file)
		b, _ := os.ReadFile(second)
		first, next = strings.Split(strings.TrimSpace(string(a)), "\n"), strings.Split(strings.TrimSpace(string(b)), "\n")
		return len(seqPaths(first))+len(seqPaths(next)) >= n
	})
	old, cur := seqPaths(first), seqPaths(next)
	expectSeq(t, "first file", old, 0, len(old))
	expectSeq(t, "second file", cur, len(old), n)
	if len(cur) < 50 || !combinedLine.MatchString(next[len(next)-1]) {
		t.Errorf("the second file's last line is not combined format: %q", next[len(next)-1])
	}
	t.Logf("%d requests: %d lines before the reload's switch, %d after", n, len(old), len(cur))
}

// weir validate names each bad access_log key and says what to give.
func TestAccessLogValidateErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "weir.yaml")
	doc := `listen: "127.0.0.1:0"
access_log:
  path: ` + filepath.Join(dir, "missing", "access.log") + `
  format: xml
  fields: [time, status, bogus, status]
  sample: 1.5
  buffer: 100000
  rotate: daily
services: [{name: a, targets: [{url: "http://127.0.0.1:9"}]}]
routes:
  - {name: r, paths: ["/"], service: a, access_log: "no"}
`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := validateFile(t, file)
	if code == 0 {
		t.Fatalf("weir validate accepted it:\n%s", out)
	}
	for _, want := range []string{
		`access_log.rotate: unknown key "rotate"`,
		`routes[0].access_log`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Once the schema holds, the values are checked, and then (when they
	// hold) the file's directory.
	doc = strings.Replace(strings.Replace(doc, "  rotate: daily\n", "", 1), `access_log: "no"`, "access_log: false", 1)
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = validateFile(t, file)
	for _, want := range []string{
		`access_log.format: "xml" is not a format: use json or combined`,
		`access_log.fields[2]: unknown field "bogus"`,
		`access_log.fields[3]: "status" is listed twice`,
		`access_log.sample: 1.5 is not a share`,
		`access_log.buffer: 100000 lines is out of range`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	doc = regexp.MustCompile(`(?m)^  (format|fields|sample|buffer):.*\n`).ReplaceAllString(doc, "")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = validateFile(t, file)
	if want := `access_log.path: directory ` + filepath.Join(dir, "missing") + ` does not exist`; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
