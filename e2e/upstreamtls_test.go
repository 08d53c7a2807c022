package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstreamCA is a test CA whose certificate and issued pairs are also
// files in the test's temporary directory, for configs that name them.
type upstreamCA struct {
	*testCA
	file string // PEM of the CA's certificate
	dir  string
}

func newUpstreamCA(t *testing.T, name string) *upstreamCA {
	t.Helper()
	ca := &upstreamCA{testCA: newTestCA(t, name), dir: t.TempDir()}
	ca.file = filepath.Join(ca.dir, name+"-ca.pem")
	if err := os.WriteFile(ca.file, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issueFiles makes a leaf certificate for a server (names: DNS names and
// IP literals) or a client, and writes it and its key as PEM files.
func (ca *upstreamCA) issueFiles(t *testing.T, cn string, client bool, names ...string) (pair tls.Certificate, certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, _ := ca.issue(t, leafOpts{cn: cn, client: client, names: names})
	certFile, keyFile = writePair(t, ca.dir, cn, certPEM, keyPEM)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certFile, keyFile
}

// tlsUpstream is an HTTPS upstream that answers with the SNI it received
// and counts full handshakes and resumed ones.
type tlsUpstream struct {
	addr          string
	full, resumed atomic.Int64
	mu            sync.Mutex
	idle          map[net.Conn]bool
}

// startTLSUpstream serves with pair; clientCAs, when set, requires a
// client certificate issued by them.
func startTLSUpstream(t *testing.T, pair tls.Certificate, clientCAs *x509.CertPool) *tlsUpstream {
	t.Helper()
	u := &tlsUpstream{idle: map[net.Conn]bool{}}
	tc := &tls.Config{
		Certificates: []tls.Certificate{pair},
		// VerifyConnection runs for every handshake, resumed or not.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				u.resumed.Add(1)
			} else {
				u.full.Add(1)
			}
			return nil
		},
	}
	if clientCAs != nil {
		tc.ClientCAs = clientCAs
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "sni=%s", r.TLS.ServerName)
		}),
		ErrorLog: log.New(io.Discard, "", 0), // refused handshakes are expected
		ConnState: func(c net.Conn, s http.ConnState) {
			u.mu.Lock()
			defer u.mu.Unlock()
			if s == http.StateIdle {
				u.idle[c] = true
			} else {
				delete(u.idle, c)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.addr = ln.Addr().String()
	return u
}

// closeIdle closes the upstream's idle keep-alive connections, as a
// server does when its idle timeout passes, and returns how many.
// net/http marks a connection idle only after the answer is on the
// wire, so the client can see the answer first: wait (bounded) for the
// mark before counting.
func (u *tlsUpstream) closeIdle() int {
	for i := 0; i < 200; i++ {
		u.mu.Lock()
		n := len(u.idle)
		u.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for c := range u.idle {
		_ = c.Close()
		delete(u.idle, c)
		n++
	}
	return n
}

// TestUpstreamTLS: https:// targets are verified against services[].tls.ca
// or the system roots, with the target's host or tls.server_name as the
// name (sent as SNI and checked; a host name target is its own SNI),
// present a client certificate when given, and a failed verification
// answers 502 and logs its reason at warn. Active health checks use the
// same settings.
func TestUpstreamTLS(t *testing.T) {
	ca := newUpstreamCA(t, "upca")
	srvPair, _, _ := ca.issueFiles(t, "up", false, "127.0.0.1", "up.test", "localhost")
	_, clientCert, clientKey := ca.issueFiles(t, "gateway", true)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	plain := startTLSUpstream(t, srvPair, nil)
	mtls := startTLSUpstream(t, srvPair, pool)

	_, plainPort, _ := net.SplitHostPort(plain.addr)
	w := startWeir(t, strings.NewReplacer("PLAIN", plain.addr, "PORT", plainPort, "MTLS", mtls.addr, "CA", ca.file,
		"CERT", clientCert, "KEY", clientKey).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - {name: ca, retries: 0, targets: [{url: "https://PLAIN"}], tls: {ca: "CA"}}
  - {name: sysroots, retries: 0, targets: [{url: "https://PLAIN"}]}
  - {name: wrongname, retries: 0, targets: [{url: "https://PLAIN"}], tls: {ca: "CA", server_name: other.test}}
  - {name: rightname, retries: 0, targets: [{url: "https://PLAIN"}], tls: {ca: "CA", server_name: up.test}}
  - {name: byhost, retries: 0, targets: [{url: "https://localhost:PORT"}], tls: {ca: "CA"}}
  - {name: withcert, retries: 0, targets: [{url: "https://MTLS"}], tls: {ca: "CA", cert: "CERT", key: "KEY"}}
  - {name: nocert, retries: 0, targets: [{url: "https://MTLS"}], tls: {ca: "CA"}}
  - {name: insecure, retries: 0, targets: [{url: "https://PLAIN"}], tls: {insecure_skip_verify: true}}
  - name: checked
    targets: [{url: "https://PLAIN"}]
    tls: {ca: "CA", min_version: "1.3"}
    health_check: {active: {path: /, interval: 100ms, timeout: 100ms, unhealthy_after: 1, healthy_after: 1}}
routes:
  - {name: ca, paths: ["/ca"], service: ca}
  - {name: sysroots, paths: ["/sysroots"], service: sysroots}
  - {name: wrongname, paths: ["/wrongname"], service: wrongname}
  - {name: rightname, paths: ["/rightname"], service: rightname}
  - {name: byhost, paths: ["/byhost"], service: byhost}
  - {name: withcert, paths: ["/withcert"], service: withcert}
  - {name: nocert, paths: ["/nocert"], service: nocert}
  - {name: insecure, paths: ["/insecure"], service: insecure}
  - {name: checked, paths: ["/checked"], service: checked}
`))
	c := newClient(w.Addr)
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/ca", 200, "sni="}, // an IP target: verified against the IP, no SNI sent
		{"/sysroots", 502, ""},
		{"/wrongname", 502, ""},
		{"/rightname", 200, "sni=up.test"},
		{"/byhost", 200, "sni=localhost"}, // no server_name: the target's host
		{"/withcert", 200, "sni="},
		{"/nocert", 502, ""},
		{"/insecure", 200, "sni="},
	} {
		for i := 0; i < 3; i++ { // repeated: the warning is not
			code, body, _ := get(t, c, tc.path, nil)
			if code != tc.status || (tc.body != "" && body != tc.body) {
				t.Fatalf("%s: %d %q, want %d %q", tc.path, code, body, tc.status, tc.body)
			}
			if code == 502 && !strings.Contains(body, "upstream failed") {
				t.Fatalf("%s: 502 body %q, want the gateway's \"upstream failed\"", tc.path, body)
			}
		}
	}
	// Health checks verify with the service's CA: were they using the
	// system roots, the first probe would take the target down (503).
	time.Sleep(400 * time.Millisecond)
	for i := 0; i < 5; i++ {
		if code, body, _ := get(t, c, "/checked", nil); code != 200 {
			t.Fatalf("/checked: %d %q, want 200: the health check failed the target", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	logs := w.Logs()
	warned := func(service, reason string) {
		t.Helper()
		n := 0
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, `"upstream TLS handshake failed"`) && strings.Contains(l, `"service":"`+service+`"`) {
				n++
				if !strings.Contains(l, `"level":"WARN"`) || !strings.Contains(l, reason) {
					t.Errorf("%s: log line %s, want a warning with %q", service, l, reason)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d handshake warnings for 3 failures, want 1 (once per target and interval)\n%s", service, n, logs)
		}
	}
	if !strings.Contains(logs, `"unsafe config setting"`) || !strings.Contains(logs, "services[7].tls.insecure_skip_verify") {
		t.Errorf("weir run did not log the insecure_skip_verify warning\n%s", logs)
	}
	warned("sysroots", "certificate signed by unknown authority")
	warned("wrongname", "other.test")
}

// TestUpstreamTLSReuse: sequential requests share one pooled TLS
// connection (one handshake at the upstream), and when the upstream
// closes it, the next connection resumes the session.
func TestUpstreamTLSReuse(t *testing.T) {
	ca := newUpstreamCA(t, "reuseca")
	pair, _, _ := ca.issueFiles(t, "reuse", false, "127.0.0.1")
	up := startTLSUpstream(t, pair, nil)
	cfg := strings.NewReplacer("UP", up.addr, "CA", ca.file).Replace(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: s, targets: [{url: "https://UP"}], tls: {ca: "CA"}}]
routes:
  - {name: r, paths: ["/"], service: s}
`)
	w := startWeir(t, cfg)
	c := newClient(w.Addr)
	for i := 0; i < 10; i++ {
		if code, body, _ := get(t, c, "/", nil); code != 200 {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if full, res := up.full.Load(), up.resumed.Load(); full != 1 || res != 0 {
		t.Fatalf("10 requests made %d full handshakes and %d resumptions, want 1 connection reused", full, res)
	}
	if n := up.closeIdle(); n != 1 {
		t.Fatalf("upstream had %d idle connections, want 1", n)
	}
	for i := 0; i < 3; i++ {
		if code, body, _ := get(t, c, "/", nil); code != 200 {
			t.Fatalf("after the upstream closed: request %d: %d %q", i, code, body)
		}
	}
	if full, res := up.full.Load(), up.resumed.Load(); full != 1 || res != 1 {
		t.Fatalf("reconnection: %d full handshakes and %d resumptions in all, want 1 and 1", full, res)
	}
	// A reload that leaves the service's TLS settings and files as they
	// were keeps its pooled connection.
	v := w.configVersion()
	w.write(cfg + "  - {name: other, paths: [\"/other\"], service: s}\n")
	w.waitVersion(v + 1)
	if code, body, _ := get(t, c, "/", nil); code != 200 {
		t.Fatalf("after a reload: %d %q", code, body)
	}
	if full, res := up.full.Load(), up.resumed.Load(); full != 1 || res != 1 {
		t.Fatalf("after a reload: %d full handshakes and %d resumptions in all, want the pooled connection kept", full, res)
	}
}

// TestUpstreamTLSValidate: `weir validate` warns about
// insecure_skip_verify and still passes the file; unreadable or
// mismatched files are errors naming the key.
func TestUpstreamTLSValidate(t *testing.T) {
	ca := newUpstreamCA(t, "valca")
	_, cert, _ := ca.issueFiles(t, "one", true)
	_, _, otherKey := ca.issueFiles(t, "two", true)
	dir := t.TempDir()
	run := func(services string) (int, string, string) {
		t.Helper()
		f := filepath.Join(dir, "weir.yaml")
		if err := os.WriteFile(f, []byte("listen: \"127.0.0.1:0\"\nservices:\n"+services+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(weirBin, "validate", "-c", f)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := run(`  - {name: s, targets: [{url: "https://127.0.0.1:1"}], tls: {insecure_skip_verify: true}}`)
	if code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("insecure_skip_verify: exit %d, stdout %q, stderr %q; want a valid file", code, out, errOut)
	}
	if !strings.Contains(errOut, "warning: ") || !strings.Contains(errOut, "services[0].tls.insecure_skip_verify") {
		t.Fatalf("insecure_skip_verify: stderr %q, want a warning naming the key", errOut)
	}

	code, out, errOut = run(`  - {name: s, targets: [{url: "https://127.0.0.1:1"}], tls: {ca: "` + ca.file + `"}}`)
	if code != 0 || errOut != "" {
		t.Fatalf("a good ca: exit %d, stdout %q, stderr %q; want valid and quiet", code, out, errOut)
	}

	for _, tc := range []struct{ services, place, msg string }{
		{`  - {name: s, targets: [{url: "https://127.0.0.1:1"}], tls: {ca: "` + filepath.Join(dir, "nope.pem") + `"}}`,
			"services[0].tls.ca", "no such file"},
		{`  - {name: s, targets: [{url: "https://127.0.0.1:1"}], tls: {ca: "` + otherKey + `"}}`,
			"services[0].tls.ca", "no PEM certificate"},
		{`  - {name: s, targets: [{url: "https://127.0.0.1:1"}], tls: {cert: "` + cert + `", key: "` + otherKey + `"}}`,
			"services[0].tls.key", "does not match"},
		{`  - {name: s, targets: [{url: "https://127.0.0.1:1"}], tls: {cert: "` + cert + `"}}`,
			"services[0].tls.key", "without key"},
		{`  - {name: s, targets: [{url: "https://127.0.0.1:1"}], tls: {min_version: "1.1"}}`,
			"services[0].tls.min_version", `"1.2" or "1.3"`},
	} {
		code, _, errOut := run(tc.services)
		if code != 1 || !strings.Contains(errOut, tc.place+": ") || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and %s: ...%s...", tc.services, code, errOut, tc.place, tc.msg)
		}
	}
}
