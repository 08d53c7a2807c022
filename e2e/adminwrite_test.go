package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirgw/weir/proxy/config"
)

// adminRaw sends one admin request with the e2e token and returns the
// status and the raw body.
func adminRaw(t *testing.T, w *weir, method, path, body string) (int, []byte) {
	t.Helper()
	code, _, raw := adminRequest(t, w, method, path, body, nil)
	return code, raw
}

// proxyStatus is the status of GET path on the proxy with the headers.
func proxyStatus(t *testing.T, w *weir, path string, hdr map[string]string) int {
	t.Helper()
	st, _, _ := get(t, newClient(w.Addr), path, hdr)
	return st
}

// startIntrospection runs an RFC 7662 introspection server that calls a
// token active only when the gateway authenticates with client_id "gw"
// and client_secret "intro-secret"; anything else is refused with 401.
func startIntrospection(t *testing.T) string {
	t.Helper()
	return serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "gw" || secret != "intro-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true,"sub":"someone"}`)
	}))
}

const maskCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: "s3cret"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes:
  - {name: main, paths: ["/main"], service: a}
  - {name: keyed, paths: ["/keyed"], service: a, plugins: [{name: key_auth}]}
  - name: intro
    paths: ["/intro"]
    service: a
    plugins:
      - {name: oauth2_introspection, config: {introspection_url: "http://INTRO/introspect", client_id: gw, client_secret: intro-secret}}
consumers: [{name: alice, credentials: {key_auth: [{key: "alice-secret-key"}]}}]
`

// TestAdminMaskedSecretsWrittenBack: what GET shows masked, PUT back
// unchanged, keeps the stored secret; the mask never becomes the secret
// (issue 13, finding 1).
func TestAdminMaskedSecretsWrittenBack(t *testing.T) {
	up := startEcho(t, "e1")
	intro := startIntrospection(t)
	w := startWeir(t, strings.NewReplacer("UP", up, "INTRO", intro).Replace(maskCfg))
	var tokens atomic.Int64
	introOK := func() int {
		// A fresh token each time: no cached answer can hide the secret
		// the gateway sends now.
		return proxyStatus(t, w, "/intro", map[string]string{"Authorization": "Bearer tok-" + strconv.FormatInt(tokens.Add(1), 10)})
	}
	checkSecrets := func(when string) {
		t.Helper()
		if st := proxyStatus(t, w, "/keyed", map[string]string{"X-API-Key": "******"}); st != 401 {
			t.Fatalf("%s: X-API-Key: ****** answers %d, want 401", when, st)
		}
		if st := proxyStatus(t, w, "/keyed", map[string]string{"X-API-Key": "alice-secret-key"}); st != 200 {
			t.Fatalf("%s: alice's real key answers %d, want 200", when, st)
		}
		if st := introOK(); st != 200 {
			t.Fatalf("%s: the introspection plugin answers %d: it no longer sends the stored client_secret", when, st)
		}
	}
	checkSecrets("at start")

	// A consumer read back and written back as it was.
	code, alice := adminRaw(t, w, "GET", "/consumers/alice", "")
	if code != 200 || !bytes.Contains(alice, []byte(`"******"`)) || bytes.Contains(alice, []byte("alice-secret-key")) {
		t.Fatalf("GET /consumers/alice: %d %s", code, alice)
	}
	if code, body := adminRaw(t, w, "PUT", "/consumers/alice", string(alice)); code != 200 {
		t.Fatalf("PUT /consumers/alice with its own GET: %d %s", code, body)
	}
	checkSecrets("after PUT /consumers/alice")

	// A route whose plugin config holds a secret.
	code, route := adminRaw(t, w, "GET", "/routes/intro", "")
	if code != 200 || !bytes.Contains(route, []byte(`"client_secret": "******"`)) {
		t.Fatalf("GET /routes/intro: %d %s", code, route)
	}
	if code, body := adminRaw(t, w, "PUT", "/routes/intro", string(route)); code != 200 {
		t.Fatalf("PUT /routes/intro with its own GET: %d %s", code, body)
	}
	checkSecrets("after PUT /routes/intro")

	// The whole config (admin.token included) read back and written back.
	code, cfg := adminRaw(t, w, "GET", "/config", "")
	if code != 200 || bytes.Contains(cfg, []byte("s3cret")) || bytes.Contains(cfg, []byte("intro-secret")) {
		t.Fatalf("GET /config: %d %s", code, cfg)
	}
	if code, body := adminRaw(t, w, "PUT", "/config", string(cfg)); code != 200 {
		t.Fatalf("PUT /config with its own GET: %d %s", code, body)
	}
	checkSecrets("after PUT /config")

	// A mask where nothing is stored is refused, naming the field.
	v := w.configVersion()
	code, body := adminRaw(t, w, "POST", "/consumers", `{"name":"bob","credentials":{"key_auth":[{"key":"******"}]}}`)
	if code != 400 || !bytes.Contains(body, []byte(`credentials.key_auth[0].key`)) {
		t.Fatalf("a new consumer with a masked key: %d %s", code, body)
	}
	// A list that changed length: the mask can no longer tell which key
	// it stands for (the one kept could be the one being revoked).
	if code, body := adminRaw(t, w, "PUT", "/consumers/alice", `{"name":"alice","credentials":{"key_auth":[{"key":"alice-secret-key"},{"key":"alice-second-key"}]}}`); code != 200 {
		t.Fatalf("PUT alice with two keys: %d %s", code, body)
	}
	v++
	code, body = adminRaw(t, w, "PUT", "/consumers/alice", `{"name":"alice","credentials":{"key_auth":[{"key":"******"}]}}`)
	if code != 400 || !bytes.Contains(body, []byte(`credentials.key_auth[0].key`)) {
		t.Fatalf("a masked key in a shorter list: %d %s", code, body)
	}
	if got := w.configVersion(); got != v {
		t.Fatalf("refused writes changed the config: version %d, want %d", got, v)
	}
	checkSecrets("after the refused writes")
	if st := proxyStatus(t, w, "/keyed", map[string]string{"X-API-Key": "alice-second-key"}); st != 200 {
		t.Fatalf("alice's second key answers %d", st)
	}
}

// TestAdminWritesAreValidatedLikeAFile: a body that a config file could
// not hold is refused whole with 400, and nothing changes (issue 13,
// finding 2).
func TestAdminWritesAreValidatedLikeAFile(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "INTRO", "127.0.0.1:9").Replace(maskCfg))
	alice := map[string]string{"X-API-Key": "alice-secret-key"}
	if proxyStatus(t, w, "/main", nil) != 200 || proxyStatus(t, w, "/keyed", alice) != 200 {
		t.Fatal("the gateway does not serve at start")
	}
	v := w.configVersion()
	for _, c := range []struct{ method, path, body, want string }{
		{"PUT", "/services/a", `null`, "expected a service (a mapping), got null"},
		{"PUT", "/services/a", ``, "the body is empty"},
		{"PUT", "/consumers/alice", `null`, "expected a consumer (a mapping), got null"},
		{"PUT", "/routes/main", `[]`, "expected a route (a mapping), got a list"},
		{"POST", "/routes", `{"name":"x","paths":["/x"],"service":"a"} }`, "invalid JSON"},
		{"POST", "/routes", `{"name":"y","paths":["/y"],"service":"a"}{"name":"z"}`, "invalid JSON"},
		{"POST", "/routes", `{"name":"y","name":"y","paths":["/y"],"service":"a"}`, `key \"name\" appears twice`},
		{"PUT", "/services/a", `{"name":"a","targets":[{"url":"http://` + up + `"}],"targets":[]}`, `key \"targets\" appears twice`},
		{"POST", "/routes", `{"name":"z","paths":["/z"],"servce":"a"}`, `unknown key \"servce\" (did you mean \"service\"?)`},
		{"PUT", "/services/a", `{"name":"a","targets":[{"url":"http://` + up + `","wieght":1}]}`, `targets[0].wieght: unknown key`},
		{"PUT", "/routes/main", `{"name":"other","paths":["/main"],"service":"a"}`, `does not match`},
		{"POST", "/services/a/targets", `null`, "expected a target (a mapping), got null"},
		{"POST", "/services/a/targets", `{"url":"http://127.0.0.1:1"} x`, "invalid JSON"},
	} {
		code, body := adminRaw(t, w, c.method, c.path, c.body)
		if code != 400 || !bytes.Contains(body, []byte(c.want)) {
			t.Errorf("%s %s %s: %d %s, want 400 with %q", c.method, c.path, c.body, code, body, c.want)
		}
	}
	if got := w.configVersion(); got != v {
		t.Fatalf("refused writes changed the config: version %d, want %d", got, v)
	}
	if st := proxyStatus(t, w, "/main", nil); st != 200 {
		t.Fatalf("the service lost its targets: /main answers %d", st)
	}
	if st := proxyStatus(t, w, "/keyed", alice); st != 200 {
		t.Fatalf("alice lost her key: /keyed answers %d", st)
	}
	for _, path := range []string{"/y", "/z", "/x"} {
		if st := proxyStatus(t, w, path, nil); st != 404 {
			t.Fatalf("a refused route serves: %s answers %d", path, st)
		}
	}
}

// TestAdminOversizedWritesAre413: a body over the limit is answered 413,
// not cut at the limit (which reads as another document) or dropped with
// the connection (issue 13, finding 2).
func TestAdminOversizedWritesAre413(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", "").Replace(adminCfg))
	v := w.configVersion()
	// A whole config may be as large as a config file (256 MiB); one
	// object and a purge list are bounded far lower.
	for _, c := range []struct {
		method, path string
		n            int
	}{
		{"POST", "/cache/purge", 17 << 20},
		{"PUT", "/services/a", 17 << 20},
		{"PUT", "/consumers/c", 2 << 20},
		{"PUT", "/config", config.MaxDocumentBytes + 1},
	} {
		if got := oversizedWrite(t, w.Admin, c.method, c.path, c.n); !strings.HasPrefix(got, "HTTP/1.1 413") {
			t.Errorf("%s %s with a %d-byte body: the answer starts %q, want HTTP/1.1 413", c.method, c.path, c.n, got)
		}
	}
	// The purge API's own, smaller limit (1 MiB) answers 413 too.
	if got := oversizedWrite(t, w.Admin, "POST", "/cache/purge", 2<<20); !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("POST /cache/purge with a 2 MiB body: the answer starts %q, want HTTP/1.1 413", got)
	}
	if got := w.configVersion(); got != v {
		t.Fatalf("an oversized write changed the config: version %d, want %d", got, v)
	}
}

// oversizedWrite sends a request with an n-byte body on a raw connection,
// reading the answer while it writes, and returns the answer's status line
// ("" if none came).
func oversizedWrite(t *testing.T, addr, method, path string, n int) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", method, path, n)
	go func() {
		// The server may stop reading and close; write errors are
		// expected then.
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for sent := 0; sent < n; sent += len(chunk) {
			if _, err := conn.Write(chunk[:min(len(chunk), n-sent)]); err != nil {
				return
			}
		}
	}()
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestAdminFlagNeedsTokenOffLoopback: `weir run --admin 0.0.0.0:PORT`
// with no token is refused at start like the same address in the file
// (issue 13, finding 3).
func TestAdminFlagNeedsTokenOffLoopback(t *testing.T) {
	up := startEcho(t, "e1")
	file := filepath.Join(t.TempDir(), "weir.yaml")
	cfg := fmt.Sprintf("listen: %q\nservices: [{name: a, targets: [{url: \"http://%s\"}]}]\nroutes: [{name: main, paths: [\"/\"], service: a}]\n", freeAddr(t), up)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	cmd := exec.Command(weirBin, "run", "-c", file, "--admin", "0.0.0.0:"+port)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("weir exited 0; want a refusal\n%s", stderr.String())
		}
		for _, want := range []string{"admin.token", `listens on "0.0.0.0:` + port + `" without a token`, "--admin"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("the refusal lacks %q:\n%s", want, stderr.String())
			}
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		t.Fatalf("weir runs an admin listener on 0.0.0.0 without a token\n%s", stderr.String())
	}
}

// adminMetrics reads GET /metrics with the e2e token.
func adminMetrics(t *testing.T, w *weir) string {
	t.Helper()
	code, body := adminRaw(t, w, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return string(body)
}

// sample is the value of the series named exactly series in a /metrics
// text, or -1.
func sample(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}

// TestReloadCountsBrokenFile: a file that cannot be parsed is a failed
// reload in the metrics, and the metrics are typed (issue 13, finding 5).
func TestReloadCountsBrokenFile(t *testing.T) {
	up := startEcho(t, "e1")
	good := strings.NewReplacer("UP", up, "REDIS", "").Replace(adminCfg)
	w := startWeir(t, good)
	if st := proxyStatus(t, w, "/main", nil); st != 200 {
		t.Fatalf("/main answers %d", st)
	}
	const failed, succeeded, last = `weir_config_reloads_total{result="failure"}`, `weir_config_reloads_total{result="success"}`, `weir_config_last_reload_successful`
	m := adminMetrics(t, w)
	f0, s0 := max(sample(m, failed), 0), max(sample(m, succeeded), 0)
	if sample(m, last) != 1 {
		t.Fatalf("%s is not 1 at start:\n%s", last, m)
	}
	// waitFor polls the metrics until the three values are as wanted.
	waitFor := func(what string, f, s, l float64) {
		t.Helper()
		if !waitUntil(10*time.Second, 50*time.Millisecond, func() bool {
			m = adminMetrics(t, w)
			return sample(m, failed) == f && max(sample(m, succeeded), 0) == s && sample(m, last) == l
		}) {
			t.Fatalf("%s: want failure=%v success=%v last=%v, got %v %v %v\n%s", what, f, s, l,
				sample(m, failed), sample(m, succeeded), sample(m, last), w.Logs())
		}
	}
	w.write("listen: [\"{{LISTEN}}\"\nroutes: {{{\n") // broken YAML
	waitFor("after a broken file", f0+1, s0, 0)
	if !strings.Contains(w.Logs(), "config refused") {
		t.Fatalf("the broken file was not logged as refused:\n%s", w.Logs())
	}
	w.write(good + "\n# touched\n")
	waitFor("after a good file", f0+1, s0+1, 1)

	// Every series is typed, before its first sample, once per family.
	for _, want := range []string{
		"# TYPE weir_requests_total counter",
		"# TYPE weir_config_reloads_total counter",
		"# TYPE weir_config_last_reload_successful gauge",
		"# TYPE weir_request_duration_seconds histogram",
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	typed := map[string]string{}
	for _, line := range strings.Split(m, "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			if typed[name] != "" {
				t.Errorf("family %s is typed twice", name)
			}
			typed[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		fam := name
		if typed[fam] == "" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && (typed[base] == "histogram" || typed[base] == "summary") {
					fam = base
				}
			}
		}
		if typed[fam] == "" {
			t.Errorf("series %s has no # TYPE line before it", name)
		}
	}
}
