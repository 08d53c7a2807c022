//lint:file-ignore SA1019 x/net/http2's ServeConn serves HTTP/2 on a TLS connection that did not negotiate it, which net/http refuses (RATIONALE.md)

package e2e

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// TestGRPCHealthCheckIsTheProxysClient: health checks of an HTTP/2
// target use the gateway's own HTTP/2 client, so they judge the target
// as the proxied calls find it. A grpcs:// target whose TLS does not
// negotiate h2 by ALPN (yet speaks HTTP/2 to whoever sends the preface)
// fails every call (502, ErrNotHTTP2); its probes must fail too and take
// it down, not report it healthy as a second client that skipped the
// ALPN check did.
func TestGRPCHealthCheckIsTheProxysClient(t *testing.T) {
	ca := newTestCA(t, "health CA")
	certPEM, keyPEM, _ := ca.issue(t, leafOpts{names: []string{"127.0.0.1"}})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// No NextProtos: the handshake negotiates no protocol.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h2 := &http2.Server{}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// x/net's server reads the TLS version from the state: the
				// handshake first.
				if err := c.(*tls.Conn).Handshake(); err != nil {
					c.Close()
					return
				}
				h2.ServeConn(c, &http2.ServeConnOpts{Handler: ok})
			}()
		}
	}()
	caFile := t.TempDir() + "/ca.pem"
	writeFile(t, caFile, string(ca.pem))
	cfg := strings.Replace(grpcCfg(ln.Addr().String(), ""), `    targets: [{url: "grpc://`, `    tls: {ca: "`+caFile+`"}
    health_check: {active: {path: /healthz, interval: 200ms, timeout: 200ms, unhealthy_after: 2, healthy_after: 1}}
    targets: [{url: "grpcs://`, 1)
	w := startWeir(t, cfg)
	// The proxied call fails: the target is no HTTP/2 server by ALPN.
	_, err = dialGRPC(t, w.Addr).UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("call to a target that does not negotiate h2: %v, want UNAVAILABLE", err)
	}
	var healthy any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, body := adminDo(t, w, "GET", "/services/grpc/health", "")
		if code != 200 {
			t.Fatalf("health: %d %v", code, body)
		}
		targets, _ := body["targets"].([]any)
		if len(targets) != 1 {
			t.Fatalf("health: %v", body)
		}
		healthy = targets[0].(map[string]any)["healthy"]
		if healthy == false {
			return
		}
	}
	t.Fatalf("a grpcs:// target that does not negotiate h2 is still healthy (%v) after 5 s of probes every 200 ms", healthy)
}
