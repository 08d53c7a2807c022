package proxy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// accessLogConfig is allocConfig with the access log on, to file FILE in
// format FORMAT, behind a trusted proxy (client_ip walks X-Forwarded-For).
const accessLogConfig = `
listen: "127.0.0.1:0"
server: {trusted_proxies: ["127.0.0.1/32", "10.0.0.0/8"]}
access_log: {path: FILE, format: FORMAT}
services: [{name: s, targets: [{url: "UP"}]}]
routes:
  - {name: users, paths: ["/users/{id}"], methods: [GET], service: s}
`

func accessLogServer(t testing.TB, format string) (*Server, string) {
	up := staticUpstream(t)
	file := filepath.Join(t.TempDir(), "access.log")
	cfg := strings.NewReplacer("UP", up.URL, "FILE", file, "FORMAT", format).Replace(accessLogConfig)
	srv, err := New(mustParse(t, cfg), "test.yaml", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(ctxTimeout(2e9)) })
	return srv, file
}

// TestZeroAllocAccessLog: with the access log on, in either format, a
// forwarded request still allocates nothing (the line is formatted into
// a pooled buffer and queued), and the line reaches the file.
func TestZeroAllocAccessLog(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); `make unit` runs this test")
	}
	for _, format := range []string{"json", "combined"} {
		t.Run(format, func(t *testing.T) {
			srv, file := accessLogServer(t, format)
			h := srv.Handler()
			rc := newDirectCtx(t)
			step := func() {
				prepare(rc, "/users/42?q=1")
				rc.Request.Header.Set("X-Forwarded-For", "203.0.113.9, 10.1.2.3")
				rc.Request.Header.Set("Referer", "http://ref.example/")
				h(rc)
			}
			// Warm up with more requests than the measured run makes, and
			// let the writer hand their buffers back.
			for i := 0; i < 300; i++ {
				step()
			}
			waitFor(t, func() bool { return len(srv.alw.q) == 0 && len(srv.alw.free) > 0 })
			allocs := testing.AllocsPerRun(200, step)
			if rc.Response.StatusCode() != 200 {
				t.Fatalf("status %d", rc.Response.StatusCode())
			}
			if allocs != 0 {
				t.Fatalf("%.1f allocations per request, want 0", allocs)
			}
			var b []byte
			waitFor(t, func() bool { b, _ = os.ReadFile(file); return bytes.Count(b, []byte("\n")) >= 501 })
			last := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]
			if !bytes.Contains(last, []byte("203.0.113.9")) || !bytes.Contains(last, []byte("/users/42?q=1")) {
				t.Fatalf("last line: %s", last)
			}
		})
	}
}

func waitFor(t testing.TB, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAppendCombinedEscaped(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"},
		{`a"b\c`, `a\x22b\x5cc`},
		{"x\r\ny", `x\x0d\x0ay`},
		{"caf\xc3\xa9\x7f", `caf\xc3\xa9\x7f`},
	} {
		if got := string(appendCombinedEscaped(nil, tc.in)); got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzAccessLogEscaping: whatever bytes a client sends, the json escape
// gives one valid JSON string that decodes to the input (invalid UTF-8
// aside) and the combined escape gives one line with no bare quote.
func FuzzAccessLogEscaping(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\r\n", "\xff", "é\\", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		j := appendJSONString(nil, in)
		if bytes.ContainsAny(j, "\r\n") {
			t.Fatalf("json escape kept a line break: %q", j)
		}
		var s string
		if err := json.Unmarshal(j, &s); err != nil {
			t.Fatalf("not a JSON string: %v: %q", err, j)
		}
		if utf8.Valid(in) && s != string(in) {
			t.Fatalf("decoded %q, want %q", s, in)
		}
		c := appendCombinedEscaped(nil, in)
		for _, ch := range c {
			if ch < 0x20 || ch >= 0x7f || ch == '"' {
				t.Fatalf("combined escape kept %q: %q", ch, c)
			}
		}
	})
}

// The per-second caches give what time.Format gives.
func TestLogTimes(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2026, 12, 7, 6, 5, 4, 3e6, time.UTC),
		time.Date(2026, 12, 7, 6, 5, 4, 999e6, time.FixedZone("x", 3600)),
		time.Date(2026, 12, 7, 6, 5, 5, 0, time.Local),
	} {
		if got, want := string(appendJSONTime(nil, ts)), ts.UTC().Format("2006-01-02T15:04:05.000Z07:00"); got != want {
			t.Errorf("json: %s, want %s", got, want)
		}
		if got, want := string(appendCombinedTime(nil, ts)), ts.Format(combinedTime); got != want {
			t.Errorf("combined: %s, want %s", got, want)
		}
	}
}

// Requests on several goroutines while a reload moves the log to another
// file and format and SIGUSR1's reopen runs: every request is logged once,
// in one file or the other, and Shutdown writes what is queued (run with
// -race).
func TestAccessLogSwitchUnderLoad(t *testing.T) {
	up := staticUpstream(t)
	dir := t.TempDir()
	first, second := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	cfg := func(file, format string) string {
		return strings.NewReplacer("UP", up.URL, "FILE", file, "FORMAT", format).Replace(accessLogConfig)
	}
	srv, err := New(mustParse(t, cfg(first, "json")), "test.yaml", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 150
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			h := srv.Handler()
			rc := newDirectCtx(t)
			for i := 0; i < each; i++ {
				prepare(rc, "/users/42")
				h(rc)
			}
		}()
	}
	if err := srv.Apply(mustParse(t, cfg(second, "combined")), "test.yaml"); err != nil {
		t.Fatal(err)
	}
	srv.ReopenAccessLog()
	for w := 0; w < workers; w++ {
		<-done
	}
	if err := srv.Shutdown(ctxTimeout(5e9)); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	na, nb := bytes.Count(a, []byte("\n")), bytes.Count(b, []byte("\n"))
	if na+nb != workers*each {
		t.Fatalf("%d + %d lines, want %d", na, nb, workers*each)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(a), []byte("\n")) {
		if len(l) > 0 && !json.Valid(l) {
			t.Fatalf("first file: not JSON: %s", l)
		}
	}
}
