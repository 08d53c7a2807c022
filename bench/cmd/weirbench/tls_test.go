package main

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startTLSServer serves 200 "ok" over TLS with a certificate writeCert
// made, on a free loopback port.
func startTLSServer(t *testing.T, kind string) string {
	t.Helper()
	certFile, keyFile, err := writeCert(t.TempDir(), kind)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("load the %s pair writeCert made: %v", kind, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}},
	}
	go func() { _ = srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// The handshake client makes one connection per request and counts the
// resumed ones: none without a session cache, all but the first few
// (those in flight before a ticket arrived) with one.
func TestRunHandshakesCountsResumption(t *testing.T) {
	for _, kind := range []string{"ecdsa", "rsa"} {
		addr := startTLSServer(t, kind)
		full := runHandshakes(hsSpec{Target: addr, Path: "/", Conns: 2, Duration: 300 * time.Millisecond})
		if full.Handshakes < 5 || full.Errors != 0 {
			t.Fatalf("%s full: %d handshakes, %d errors (%s)", kind, full.Handshakes, full.Errors, full.FirstError)
		}
		if full.Resumed != 0 {
			t.Fatalf("%s full: %d resumed without a session cache", kind, full.Resumed)
		}
		if full.Version != "TLS 1.3" || full.Curve != "X25519" {
			t.Fatalf("%s full: negotiated %s %s, want TLS 1.3 with X25519", kind, full.Version, full.Curve)
		}
		res := runHandshakes(hsSpec{Target: addr, Path: "/", Conns: 2, Duration: 300 * time.Millisecond, Resume: true})
		if res.Handshakes < 5 || res.Errors != 0 {
			t.Fatalf("%s resumed: %d handshakes, %d errors (%s)", kind, res.Handshakes, res.Errors, res.FirstError)
		}
		if res.Resumed == 0 || res.Resumed > res.Handshakes-1 {
			t.Fatalf("%s resumed: %d of %d resumed; want all but the first ones", kind, res.Resumed, res.Handshakes)
		}
		v12 := runHandshakes(hsSpec{Target: addr, Path: "/", Conns: 1, Duration: 100 * time.Millisecond, TLS12: true})
		if v12.Handshakes == 0 || v12.Version != "TLS 1.2" {
			t.Fatalf("%s TLS 1.2: %d handshakes, version %q (%s)", kind, v12.Handshakes, v12.Version, v12.FirstError)
		}
	}
}

// A server that answers something else than 200 is an error, not a
// handshake.
func TestRunHandshakesWantsOK(t *testing.T) {
	certFile, keyFile, err := writeCert(t.TempDir(), "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go func() { _ = srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}})) }()
	defer srv.Close()
	res := runHandshakes(hsSpec{Target: ln.Addr().String(), Path: "/", Conns: 1, Duration: 100 * time.Millisecond})
	if res.Handshakes != 0 || res.Errors == 0 || !strings.Contains(res.FirstError, "404") {
		t.Fatalf("got %d handshakes, %d errors (%q); want only errors naming the 404", res.Handshakes, res.Errors, res.FirstError)
	}
}

func TestTLSReportTable(t *testing.T) {
	rep := &tlsReport{Rounds: 2, Duration: "4s", Rows: []*tlsRow{
		{Row: "full handshake ECDSA", Contender: "weir", Rate: []float64{900, 1100}, CPUus: []float64{400, 400}},
		{Row: "full handshake ECDSA", Contender: "nginx", Rate: []float64{1000, 1000}, CPUus: []float64{500, 500}},
	}}
	var sb strings.Builder
	printTLSReport(&sb, rep)
	out := sb.String()
	for _, want := range []string{"| full handshake ECDSA | weir | 1,000 | 900–1,100 |", "| 1.00 | 0.90 1.10 | 0.80 | 0.80 0.80 |"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
}

// BenchmarkTLSPrimitives prices, in Go, the operations a TLS server does
// per handshake and per record, to set against `openssl speed` on the
// same machine (bench/README.md, "TLS").
func BenchmarkTLSPrimitives(b *testing.B) {
	digest := sha256.Sum256([]byte("handshake transcript"))
	b.Run("rsa2048-sign-pss", func(b *testing.B) {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		for b.Loop() {
			if _, err := k.Sign(rand.Reader, digest[:], opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ecdsa-p256-sign", func(b *testing.B) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, k, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("x25519-keygen+ecdh", func(b *testing.B) {
		peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
		for b.Loop() {
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.ECDH(peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{64, 1024, 16384} {
		b.Run("aes128gcm-seal-"+map[int]string{64: "64B", 1024: "1KiB", 16384: "16KiB"}[n], func(b *testing.B) {
			blk, _ := aes.NewCipher(make([]byte, 16))
			g, _ := cipher.NewGCM(blk)
			nonce, msg := make([]byte, 12), make([]byte, n)
			out := make([]byte, 0, n+16)
			b.SetBytes(int64(n))
			for b.Loop() {
				out = g.Seal(out[:0], nonce, msg, nil)
			}
		})
	}
}
