package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// echoCfg is a weir config with one listener (its YAML flow mapping) and
// a route / to the echo upstream.
func echoCfg(up, listener string) string {
	return `
listen:
  - ` + listener + `
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 2s}
services:
  - name: echo
    targets: [{url: "http://` + up + `"}]
routes:
  - {name: all, paths: ["/"], service: echo}
`
}

// curlH2 runs curl with args and returns its output: the body, then
// " proto=<http_version> status=<code>".
func curlH2(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (Debian package curl)")
	}
	args = append([]string{"-sS", "--max-time", "5", "-w", " proto=%{http_version} status=%{http_code}"}, args...)
	out, err := exec.Command("curl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestHTTP2CurlTLS: curl --http2 on a TLS listener with http2: true
// negotiates h2 through ALPN and is proxied like HTTP/1.1: the route, the
// upstream, X-Forwarded-Proto https. Without http2 the same listener
// stays HTTP/1.1.
func TestHTTP2CurlTLS(t *testing.T) {
	up := startEcho(t, "h2tls")
	ca := newTestCA(t, "h2 CA")
	dir := t.TempDir()
	certPEM, keyPEM, _ := ca.issue(t, leafOpts{names: []string{"127.0.0.1", "localhost"}})
	cert, key := writePair(t, dir, "leaf", certPEM, keyPEM)
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(ca.pem))
	tlsSec := `{certificates: [{cert: "` + cert + `", key: "` + key + `"}]}`
	w := startWeir(t, echoCfg(up, `{address: "{{LISTEN}}", http2: true, tls: `+tlsSec+`}`))
	out := curlH2(t, "--http2", "--cacert", caFile, "-H", "X-Test: 1", "https://"+w.Addr+"/hello?x=1")
	if !strings.HasSuffix(out, " proto=2 status=200") {
		t.Fatalf("want h2 200, got %q", out)
	}
	for _, want := range []string{`"server":"h2tls"`, `"path":"/hello","query":"x=1"`, `"X-Forwarded-Proto":"https"`, `"X-Test":"1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("echo answer lacks %q:\n%s", want, out)
		}
	}
	// A POST body goes through.
	out = curlH2(t, "--http2", "--cacert", caFile, "--data-binary", "ping-body", "https://"+w.Addr+"/post")
	if !strings.Contains(out, `"body_len":9`) || !strings.HasSuffix(out, " proto=2 status=200") {
		t.Errorf("POST over h2: %q", out)
	}

	off := startWeir(t, echoCfg(up, `{address: "{{LISTEN}}", tls: `+tlsSec+`}`))
	out = curlH2(t, "--http2", "--cacert", caFile, "https://"+off.Addr+"/")
	if !strings.HasSuffix(out, " proto=1.1 status=200") {
		t.Fatalf("without http2 the listener must stay HTTP/1.1, got %q", out)
	}
}

// TestHTTP2CurlPriorKnowledge: curl --http2-prior-knowledge on a
// cleartext listener with http2: true speaks h2c; without http2 the
// preface is refused (505) as before.
func TestHTTP2CurlPriorKnowledge(t *testing.T) {
	up := startEcho(t, "h2c")
	w := startWeir(t, echoCfg(up, `{address: "{{LISTEN}}", http2: true}`))
	// One request per curl: Debian's curl 7.88.1 fails a second request
	// on a reused prior-knowledge connection, to nginx as well ("Error
	// in the HTTP2 framing layer"); the gRPC tests multiplex.
	for _, p := range []string{"/a", "/b"} {
		out := curlH2(t, "--http2-prior-knowledge", "http://"+w.Addr+p)
		if !strings.HasSuffix(out, " proto=2 status=200") || !strings.Contains(out, `"path":"`+p+`"`) {
			t.Fatalf("want an h2c 200 for %s, got %q", p, out)
		}
		if !strings.Contains(out, `"X-Forwarded-Proto":"http"`) {
			t.Errorf("h2c is not TLS: %q", out)
		}
	}
	// Upgrade: h2c (curl --http2 on http://): 101, then HTTP/2.
	out := curlH2(t, "--http2", "http://"+w.Addr+"/up")
	if !strings.HasSuffix(out, " proto=2 status=200") || !strings.Contains(out, `"path":"/up"`) {
		t.Fatalf("Upgrade: h2c: %q", out)
	}
	// HTTP/1.1 on the same listener is untouched.
	out = curlH2(t, "--http1.1", "http://"+w.Addr+"/plain")
	if !strings.HasSuffix(out, " proto=1.1 status=200") {
		t.Fatalf("HTTP/1.1 on an http2 listener: %q", out)
	}

	off := startWeir(t, echoCfg(up, `{address: "{{LISTEN}}"}`))
	cmd := exec.Command("curl", "-sS", "--max-time", "5", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", "http://"+off.Addr+"/")
	got, _ := cmd.Output()
	if strings.TrimSpace(string(got)) == "200" {
		t.Fatalf("a listener without http2 served h2c")
	}
}

// TestHTTP2ValidateNamesKeys: weir validate names the HTTP/2 keys it
// refuses and the fix.
func TestHTTP2ValidateNamesKeys(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, f, `
listen: [{address: ":8080", http2: yes-please}]
server: {max_concurrent_streams: 5000}
services: [{name: g, targets: [{url: "grpcx://10.0.0.1:1"}]}]
routes: [{name: r, paths: ["/"], service: g}]
`)
	out, code := validateFile(t, f)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		`listen[0].http2`,
		`server.max_concurrent_streams: 5000 is out of range: use 1 to 1000 HTTP/2 streams per connection`,
		`services[0].targets[0].url: scheme "grpcx"`, `h2c or grpc (HTTP/2 cleartext)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("weir validate lacks %q:\n%s", want, out)
		}
	}
}
