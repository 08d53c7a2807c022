package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// emfileLimit is the open-file limit, soft and hard, weir runs under in
// TestAcceptSurvivesEMFILE; emfileIdle client connections are more than
// it can hold.
const (
	emfileLimit = 200
	emfileIdle  = 300
)

const emfileCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/x"], service: a}]
`

// TestAcceptSurvivesEMFILE runs weir with both open-file limits at 200 so
// that neither Go nor weir can raise them, exhausts its descriptors with
// idle client connections, and checks that /status (over an admin
// connection opened before) says it cannot accept and the refusals are
// counted; then frees the descriptors and checks that the same listener
// serves again and /status is healthy. fasthttp's accept loop used to
// stop on EMFILE: the listener stayed dead for good.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	t.Run("cleartext", func(t *testing.T) {
		up := startEcho(t, "up")
		w := startWeirNoFile(t, strings.ReplaceAll(emfileCfg, "UP", up), emfileLimit)
		emfileRecovery(t, w, func(d time.Duration) (int, string) { return proxyGet(t, w.Addr, d) })
	})
	// A TLS listener accepts through its own wrapper (package tlsfront):
	// the retry must cover it as well.
	t.Run("tls", func(t *testing.T) {
		ca := newTestCA(t, "weir test CA")
		certPEM, keyPEM, _ := ca.issue(t, leafOpts{names: []string{"gw.test"}})
		cf, kf := writePair(t, t.TempDir(), "gw", certPEM, keyPEM)
		up := startEcho(t, "up")
		cfg := strings.Replace(strings.ReplaceAll(emfileCfg, "UP", up), `listen: "{{LISTEN}}"`,
			fmt.Sprintf(`listen: [{address: "{{LISTEN}}", tls: {certificates: [{cert: %q, key: %q}]}}]`, cf, kf), 1)
		w := startWeirNoFile(t, cfg, emfileLimit)
		emfileRecovery(t, w, func(d time.Duration) (int, string) {
			return tlsProxyGet(w.Addr, &tls.Config{ServerName: "gw.test", RootCAs: ca.pool}, d)
		})
	})
}

// emfileRecovery is TestAcceptSurvivesEMFILE on one running weir; get
// makes a request to its listener on a new connection within a time.
func emfileRecovery(t *testing.T, w *weir, get func(time.Duration) (int, string)) {

	// The limits really are what the test thinks.
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", w.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`Max open files\s+(\d+)\s+(\d+)`).FindSubmatch(limits); m == nil ||
		string(m[1]) != strconv.Itoa(emfileLimit) || string(m[2]) != strconv.Itoa(emfileLimit) {
		t.Fatalf("weir's open file limits are not %d/%d:\n%s", emfileLimit, emfileLimit, limits)
	}
	if code, body := get(2 * time.Second); code != 200 {
		t.Fatalf("GET /x before exhaustion: %d %q", code, body)
	}

	// The operator's view: an admin connection kept alive from before.
	adm := dialAdmin(t, w.Admin)
	if code, st := adm.status(); code != 200 {
		t.Fatalf("/status before exhaustion: %d %v", code, st)
	}

	idle := make([]net.Conn, 0, emfileIdle)
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range emfileIdle {
		// The kernel completes the handshake whether weir accepts or
		// not (the accept queue is far longer than 100).
		c, err := net.DialTimeout("tcp", w.Addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dialing idle connection %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}

	// Out of descriptors: /status must say so, and the refusals must be
	// counted. Errors, not fatal: the recovery below is checked anyway.
	var (
		code    int
		st      map[string]any
		refused float64
	)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		code, st = adm.status()
		refused = adm.metric(`weir_accept_errors_total{reason="emfile"}`)
		// Eight refusals: the retries have backed off to 640 ms, so the
		// recovery below is measured against a long wait, not a 5 ms one.
		if code == 503 && refused >= 8 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 503 || st["status"] != "unhealthy" || st["accepting"] != false ||
		st["last_accept_error"] != "too many open files" {
		t.Errorf("/status while out of descriptors: %d %v, want 503 unhealthy, accepting false, last_accept_error \"too many open files\"", code, st)
	}
	if refused < 8 {
		t.Errorf("weir_accept_errors_total{reason=\"emfile\"} = %v while out of descriptors, want >= 8", refused)
	}
	// Logged once per episode, not once per retry.
	if n := strings.Count(w.Logs(), "accepting connections failed"); n < 1 || float64(n) >= refused {
		t.Errorf("%d log lines for %v refused accepts, want at least one and fewer than the refusals", n, refused)
	}

	for _, c := range idle {
		c.Close()
	}
	idle = idle[:0]
	freed := time.Now()

	// A new client is served again, by the same listener, soon: the
	// retries back off to at most a second.
	code, body := get(3 * time.Second)
	if code != 200 {
		t.Fatalf("GET /x after the descriptors were freed: %d %q (listener dead?)", code, body)
	}
	t.Logf("%v refused accepts; served again %v after the descriptors were freed", refused, time.Since(freed))
	if d := time.Since(freed); d > 2500*time.Millisecond {
		t.Errorf("served again only %v after the descriptors were freed", d)
	}
	// And /status, over a new connection, is healthy again.
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + w.Admin + "/status")
	if err != nil {
		t.Fatalf("/status after recovery: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var after map[string]any
	_ = json.Unmarshal(raw, &after)
	if resp.StatusCode != 200 || after["accepting"] != true || after["status"] != "ok" {
		t.Fatalf("/status after recovery: %d %s", resp.StatusCode, raw)
	}
	if !strings.Contains(w.Logs(), "accepting connections again") {
		t.Errorf("no log line for the end of the episode")
	}
}

// startWeirNoFile is startWeir with the soft and hard open-file limits
// both set to n (weir.nofile).
func startWeirNoFile(t *testing.T, cfg string, n int) *weir {
	t.Helper()
	w := &weir{t: t, Addr: freeAddr(t), Admin: freeAddr(t), nofile: n}
	w.File = filepath.Join(t.TempDir(), "weir.yaml")
	w.write(cfg)
	return w.launch(false)
}

// proxyGet sends GET /x on a new connection to addr and reads the answer
// within d; code 0 when none came.
func proxyGet(t *testing.T, addr string, d time.Duration) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return 0, err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tlsProxyGet is proxyGet over TLS.
func tlsProxyGet(addr string, cfg *tls.Config, d time.Duration) (int, string) {
	nc, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return 0, err.Error()
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(d))
	c := tls.Client(nc, cfg)
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// adminConn is one kept-alive connection to the admin listener: it needs
// no new descriptor in weir, so it answers while weir has none to spare.
type adminConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialAdmin(t *testing.T, addr string) *adminConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &adminConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (a *adminConn) get(path string) (int, []byte) {
	a.t.Helper()
	_ = a.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(a.c, "GET "+path+" HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
		a.t.Fatalf("admin GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(a.br, nil)
	if err != nil {
		a.t.Fatalf("admin GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("admin GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, b
}

func (a *adminConn) status() (int, map[string]any) {
	code, b := a.get("/status")
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return code, m
}

// metric is the value of the /metrics series named exactly name, or -1.
func (a *adminConn) metric(name string) float64 {
	_, b := a.get("/metrics")
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}
