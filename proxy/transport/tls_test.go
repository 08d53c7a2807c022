package transport

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTLSUpstream: a TLS connection keeps the plain path (no held writes,
// no raw check) and is reused across requests; deadlines still apply.
// The test server's certificate is trusted through SSL_CERT_FILE, which
// crypto/x509 reads once per process — no other test here verifies a
// certificate.
func TestTLSUpstream(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("tls:" + r.URL.Path))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	pemPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", pemPath)
	addr := strings.TrimPrefix(srv.URL, "https://")
	tr := New(Config{Addr: addr, TLS: true})
	defer tr.Close()
	for i := 0; i < 5; i++ {
		resp, err := get(t, tr, "/p")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := readAll(resp); got != "tls:/p" {
			t.Fatalf("request %d: body %q", i, got)
		}
	}
	if tr.Open() != 1 {
		t.Fatalf("%d connections open, want 1 reused", tr.Open())
	}
	if conns.Load() != 1 {
		t.Fatalf("server saw %d connections, want 1", conns.Load())
	}
}
