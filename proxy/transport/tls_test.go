package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tlsServer starts an HTTPS test server (httptest's certificate is for
// 127.0.0.1 and example.com) that answers with the SNI it received and
// whether the session was resumed; it counts full handshakes and
// resumptions, and calls connState (when set) as connections change state.
// trust holds its CA.
func tlsServer(t *testing.T, connState func(net.Conn, http.ConnState)) (srv *httptest.Server, trust *x509.CertPool, full, resumed *atomic.Int64) {
	full, resumed = new(atomic.Int64), new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("sni=" + r.TLS.ServerName))
	}))
	srv.Config.ConnState = connState
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	srv.TLS = &tls.Config{VerifyConnection: func(cs tls.ConnectionState) error {
		if cs.DidResume {
			resumed.Add(1)
		} else {
			full.Add(1)
		}
		return nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	trust = x509.NewCertPool()
	trust.AddCert(srv.Certificate())
	return srv, trust, full, resumed
}

// TestTLSUpstream: a TLS connection keeps the plain path (no held writes,
// no raw check) and is reused across requests: one handshake for many
// requests. The server name defaults to the address's host.
func TestTLSUpstream(t *testing.T) {
	var conns atomic.Int64
	srv, trust, full, _ := tlsServer(t, func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	})
	addr := strings.TrimPrefix(srv.URL, "https://")
	shared := &tls.Config{RootCAs: trust}
	tr := New(Config{Addr: addr, TLS: shared})
	defer tr.Close()
	for i := 0; i < 5; i++ {
		resp, err := get(t, tr, "/p")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		// An IP literal is verified but sent as no SNI.
		if got := readAll(resp); got != "sni=" {
			t.Fatalf("request %d: body %q", i, got)
		}
	}
	if tr.Open() != 1 || conns.Load() != 1 || full.Load() != 1 {
		t.Fatalf("%d connections open, server saw %d connections and %d handshakes; want 1 reused", tr.Open(), conns.Load(), full.Load())
	}
	if shared.ServerName != "" || shared.ClientSessionCache != nil {
		t.Fatal("New modified the shared tls.Config")
	}
}

// TestTLSServerNameAndResumption: a configured server name is sent as SNI
// and verified, and once the pool has dropped its idle connection the
// next one resumes the session instead of a full handshake.
func TestTLSServerNameAndResumption(t *testing.T) {
	srv, trust, full, resumed := tlsServer(t, nil)
	addr := strings.TrimPrefix(srv.URL, "https://")
	tr := New(Config{Addr: addr, TLS: &tls.Config{RootCAs: trust, ServerName: "example.com"}, IdleTimeout: 40 * time.Millisecond})
	defer tr.Close()
	resp, err := get(t, tr, "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(resp); got != "sni=example.com" {
		t.Fatalf("body %q, want the configured server name", got)
	}
	for deadline := time.Now().Add(3 * time.Second); tr.Open() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the idle connection was not reaped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := get(t, tr, "/"); err != nil {
		t.Fatal(err)
	}
	if full.Load() != 1 || resumed.Load() != 1 {
		t.Fatalf("%d full handshakes and %d resumptions, want 1 and 1", full.Load(), resumed.Load())
	}
}

// TestTLSVerifyFailure: an untrusted certificate or a name it does not
// cover fails the handshake as a DialError marked Handshake (nothing was
// sent: another target may be tried).
func TestTLSVerifyFailure(t *testing.T) {
	srv, trust, _, _ := tlsServer(t, nil)
	addr := strings.TrimPrefix(srv.URL, "https://")
	for name, c := range map[string]*tls.Config{
		"system roots": {},
		"wrong name":   {RootCAs: trust, ServerName: "other.test"},
	} {
		tr := New(Config{Addr: addr, TLS: c})
		_, err := get(t, tr, "/")
		tr.Close()
		var de *DialError
		if !errors.As(err, &de) || !de.Handshake {
			t.Fatalf("%s: error %v, want a handshake DialError", name, err)
		}
		var ve *tls.CertificateVerificationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: error %v does not carry the verification failure", name, err)
		}
	}
}

func TestWarnDue(t *testing.T) {
	tr := New(Config{Addr: "127.0.0.1:1"})
	defer tr.Close()
	if !tr.WarnDue(time.Hour) || tr.WarnDue(time.Hour) {
		t.Fatal("want the first warning due and the second not within the interval")
	}
	if !tr.WarnDue(0) {
		t.Fatal("want a warning due once the interval passed")
	}
}
