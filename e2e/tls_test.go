package e2e

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/echo"
	"github.com/weirgw/weir/internal/testredis"
	"golang.org/x/crypto/ocsp"
)

// testCA is a certificate authority made by a test.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
	pool *x509.CertPool
}

var serialSeq atomic.Int64

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leafOpts shape a certificate the test CA issues.
type leafOpts struct {
	cn        string // subject common name; "leaf" when empty
	rsa       bool
	names     []string // DNS names, and IP literals as IP addresses
	uris      []string // URI SANs
	notBefore time.Time
	notAfter  time.Time
	client    bool
	ocsp      string
}

// issue returns a leaf's PEM chain (leaf, then the CA), its PEM key and
// its serial number.
func (ca *testCA) issue(t testing.TB, o leafOpts) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	var key crypto.Signer
	if o.rsa {
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(12 * time.Hour)
	}
	if o.cn == "" {
		o.cn = "leaf"
	}
	serial = big.NewInt(serialSeq.Add(1) + time.Now().UnixNano())
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if o.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if o.ocsp != "" {
		tmpl.OCSPServer = []string{o.ocsp}
	}
	for _, s := range o.uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	for _, n := range o.names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.pem...)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	return certPEM, keyPEM, serial
}

// writePair writes a pair into dir as NAME.pem and NAME-key.pem, each by
// an atomic rename.
func writePair(t testing.TB, dir, name string, certPEM, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f+".tmp", f); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// clientAuthFiles makes a server CA whose certificate for api.test is in
// the files cf and kf, and a client CA whose certificate is in caFile:
// the files of a listener that verifies client certificates.
func clientAuthFiles(t testing.TB) (ca, clientCA *testCA, cf, kf, caFile string) {
	t.Helper()
	ca = newTestCA(t, "server CA")
	clientCA = newTestCA(t, "client CA")
	dir := t.TempDir()
	c, k, _ := ca.issue(t, leafOpts{names: []string{"api.test"}})
	cf, kf = writePair(t, dir, "api", c, k)
	caFile = filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(caFile, clientCA.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca, clientCA, cf, kf, caFile
}

// tlsCfg is a weir config with one TLS listener (tls is the YAML flow
// mapping of its tls section) and a route / to the echo upstream.
func tlsCfg(up, tls string) string {
	return echoCfg(up, `{address: "{{LISTEN}}", tls: `+tls+`}`)
}

// tlsGet makes one HTTPS request on a new connection and returns the
// connection's state, the status and the body.
func tlsGet(addr string, cfg *tls.Config, path string) (tls.ConnectionState, int, string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, 0, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", path); err != nil {
		return conn.ConnectionState(), 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return conn.ConnectionState(), 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return conn.ConnectionState(), resp.StatusCode, string(b), err
}

func leafSerial(st tls.ConnectionState) string {
	if len(st.PeerCertificates) == 0 {
		return ""
	}
	return st.PeerCertificates[0].SerialNumber.String()
}

// TestTLSCertificateSelection: the certificate is chosen by SNI (exact,
// then a one-label wildcard, else the first as default) and by what the
// client supports (ECDSA preferred, RSA for an RSA-only client); TLS 1.2
// offers only ECDHE with AEAD; requests carry X-Forwarded-Proto: https.
func TestTLSCertificateSelection(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	dir := t.TempDir()
	defCert, defKey, defSerial := ca.issue(t, leafOpts{rsa: true, names: []string{"default.test"}})
	ecCert, ecKey, ecSerial := ca.issue(t, leafOpts{names: []string{"api.test", "*.wild.test"}})
	rsaCert, rsaKey, rsaSerial := ca.issue(t, leafOpts{rsa: true, names: []string{"api.test", "*.wild.test"}})
	dc, dk := writePair(t, dir, "default", defCert, defKey)
	// Relative paths resolve against the config file's directory.
	writePair(t, filepath.Dir(dc), "ec", ecCert, ecKey)
	rc, rk := writePair(t, dir, "rsa", rsaCert, rsaKey)
	up := startEcho(t, "e1")
	w := startWeir(t, tlsCfg(up, fmt.Sprintf(`{certificates: [{cert: %q, key: %q}, {cert: %q, key: %q}, {cert: %q, key: %q}]}`,
		dc, dk, "../"+filepath.Base(dir)+"/ec.pem", "../"+filepath.Base(dir)+"/ec-key.pem", rc, rk)))

	cases := []struct {
		name   string
		cfg    *tls.Config
		serial string
	}{
		{"exact name, ECDSA preferred", &tls.Config{ServerName: "api.test"}, ecSerial.String()},
		{"wildcard", &tls.Config{ServerName: "x.wild.test"}, ecSerial.String()},
		{"wildcard is one label", &tls.Config{ServerName: "a.b.wild.test", InsecureSkipVerify: true}, defSerial.String()},
		{"unknown name", &tls.Config{ServerName: "nope.test", InsecureSkipVerify: true}, defSerial.String()},
		{"no SNI", &tls.Config{InsecureSkipVerify: true}, defSerial.String()},
		{"TLS 1.2, ECDHE_RSA only", &tls.Config{ServerName: "api.test", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, rsaSerial.String()},
		{"TLS 1.2, ECDHE_ECDSA only", &tls.Config{ServerName: "api.test", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, ecSerial.String()},
	}
	for _, tc := range cases {
		tc.cfg.RootCAs = ca.pool
		st, code, body, err := tlsGet(w.Addr, tc.cfg, "/sel")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := leafSerial(st); got != tc.serial || code != 200 {
			t.Errorf("%s: serial %s (want %s), status %d", tc.name, got, tc.serial, code)
		}
		var r echo.Reply
		if err := json.Unmarshal([]byte(body), &r); err != nil || r.Headers["X-Forwarded-Proto"] != "https" {
			t.Errorf("%s: upstream saw X-Forwarded-Proto %q (%v)", tc.name, r.Headers["X-Forwarded-Proto"], err)
		}
	}

	// ALPN offers http/1.1 (and nothing the server cannot speak).
	st, _, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool, NextProtos: []string{"h2", "http/1.1"}}, "/")
	if err != nil || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN: %q, %v", st.NegotiatedProtocol, err)
	}
	// Weak TLS 1.2 suites are refused: RSA key exchange, CBC, no ECDHE.
	for _, suite := range []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA} {
		_, _, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "default.test", RootCAs: ca.pool, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{suite}}, "/")
		if err == nil {
			t.Errorf("suite %s was accepted", tls.CipherSuiteName(suite))
		}
	}
	// Without min_version the floor is TLS 1.2: the server refuses a
	// client that stops at 1.0 or 1.1 with a protocol version alert.
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		_, _, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool, MinVersion: v, MaxVersion: v}, "/")
		if err == nil || !strings.Contains(err.Error(), "protocol version not supported") {
			t.Errorf("a %s client: %v; want the server's protocol version alert", tls.VersionName(v), err)
		}
	}
	if v := w.metric(`weir_tls_handshakes_total{version="1.3",result="ok"}`); v < 4 {
		t.Errorf("weir_tls_handshakes_total 1.3 ok = %v", v)
	}
	if v := w.metric(`weir_tls_handshakes_total{version="1.2",result="failed"}`); v < 3 {
		t.Errorf("weir_tls_handshakes_total failed = %v", v)
	}
	if v := w.metric(`weir_tls_certificate_expiry_seconds{name="api.test"}`); v < 11*3600 || v > 12*3600 {
		t.Errorf("weir_tls_certificate_expiry_seconds{name=api.test} = %v", v)
	}
}

// TestTLSMinVersion13: min_version 1.3 refuses a client that stops at 1.2.
func TestTLSMinVersion13(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	c, k, _ := ca.issue(t, leafOpts{names: []string{"api.test"}})
	cf, kf := writePair(t, t.TempDir(), "api", c, k)
	w := startWeir(t, tlsCfg(startEcho(t, "e1"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}], min_version: "1.3"}`, cf, kf)))
	if _, _, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool, MaxVersion: tls.VersionTLS12}, "/"); err == nil {
		t.Fatal("a TLS 1.2 client was accepted by a min_version 1.3 listener")
	}
	st, code, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool}, "/")
	if err != nil || code != 200 || st.Version != tls.VersionTLS13 {
		t.Fatalf("TLS 1.3: %v %d %x", err, code, st.Version)
	}
}

// TestTLSCiphers: tls.ciphers narrows TLS 1.2 to the suites it names
// (TLS 1.3 keeps Go's three), and a suite outside the policy, such as a
// CBC one, is refused by weir validate with the place and a fix.
func TestTLSCiphers(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	c, k, _ := ca.issue(t, leafOpts{names: []string{"api.test"}})
	cf, kf := writePair(t, t.TempDir(), "api", c, k)
	w := startWeir(t, tlsCfg(startEcho(t, "e1"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}], ciphers: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]}`, cf, kf)))
	tls12 := func(suites ...uint16) (tls.ConnectionState, error) {
		st, _, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool, MaxVersion: tls.VersionTLS12, CipherSuites: suites}, "/")
		return st, err
	}
	st, err := tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
	if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Errorf("TLS 1.2: %v, suite %s; want the one named in ciphers", err, tls.CipherSuiteName(st.CipherSuite))
	}
	if _, err := tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err == nil {
		t.Error("TLS 1.2 with a default suite that ciphers leaves out was accepted")
	}
	if st, _, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool}, "/"); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3: %v, version %x", err, st.Version)
	}

	// CBC only when asked, with a warning; RSA key exchange never.
	file := filepath.Join(t.TempDir(), "weir.yaml")
	writeFile(t, file, fmt.Sprintf("listen: {address: \"127.0.0.1:0\", tls: {certificates: [{cert: %q, key: %q}], ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]}}\n", cf, kf))
	out, code := validateFile(t, file)
	if want := `listen.tls.ciphers[1]: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" is a CBC suite, outside the default policy`; code != 0 || !strings.Contains(out, want) {
		t.Errorf("a CBC suite asked for: exit %d, output:\n%s\nwant the warning %q", code, out, want)
	}
	writeFile(t, file, fmt.Sprintf("listen: {address: \"127.0.0.1:0\", tls: {certificates: [{cert: %q, key: %q}], ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_128_GCM_SHA256]}}\n", cf, kf))
	out, code = validateFile(t, file)
	if want := `listen.tls.ciphers[1]: "TLS_RSA_WITH_AES_128_GCM_SHA256" is not a TLS 1.2 cipher suite Weir accepts`; code != 1 || !strings.Contains(out, want) {
		t.Errorf("an RSA key exchange suite: exit %d, output:\n%s\nwant %q", code, out, want)
	}
	cbc := startWeir(t, tlsCfg(startEcho(t, "e2"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}], ciphers: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]}`, cf, kf)))
	st, _, _, err = tlsGet(cbc.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, "/")
	if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA {
		t.Errorf("a CBC suite asked for is not served: %v, suite %s", err, tls.CipherSuiteName(st.CipherSuite))
	}
}

// TestTLSPlainHTTPOnTLSPort: a plain HTTP request on the TLS port gets a
// 400 with the gateway's JSON error, then the connection closes; a client
// that sends nothing is dropped after the read timeout.
func TestTLSPlainHTTPOnTLSPort(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	c, k, _ := ca.issue(t, leafOpts{names: []string{"api.test"}})
	cf, kf := writePair(t, t.TempDir(), "api", c, k)
	w := startWeir(t, tlsCfg(startEcho(t, "e1"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}]}`, cf, kf)))

	conn, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(conn) // to EOF: the server closes
	if err != nil {
		t.Fatalf("reading the answer: %v (got %q)", err, raw)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(raw))), nil)
	if err != nil {
		t.Fatalf("not an HTTP answer: %v: %q", err, raw)
	}
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Status    int    `json:"status"`
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if resp.StatusCode != 400 || json.Unmarshal(body, &e) != nil || e.Status != 400 ||
		e.Error != "plain HTTP request was sent to an HTTPS port" || len(e.RequestID) != 36 ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %q", raw)
	}

	// A silent connection is closed once server.read_timeout (2s) passes.
	idle, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	_ = idle.SetDeadline(time.Now().Add(6 * time.Second))
	n, err := idle.Read(make([]byte, 1))
	if err != io.EOF || n != 0 || time.Since(start) > 4*time.Second {
		t.Fatalf("silent client: read %d, %v after %s; want EOF within the 2s read timeout", n, err, time.Since(start))
	}
	// So is one that stops in the middle of its ClientHello.
	slow, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start = time.Now()
	_, _ = slow.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
	_ = slow.SetDeadline(time.Now().Add(6 * time.Second))
	n, err = slow.Read(make([]byte, 1))
	if err != io.EOF || n != 0 || time.Since(start) > 4*time.Second {
		t.Fatalf("slow handshake: read %d, %v after %s; want EOF within the 2s read timeout", n, err, time.Since(start))
	}
}

// TestTLSReloadUnderLoad: renewed certificate files are picked up, on a
// file change and on SIGHUP, while clients keep making new connections,
// with no failed handshake or request, and a connection opened before
// the first reload keeps serving after each one; a broken pair is
// refused with a log line naming the file, and the running certificate
// stays.
func TestTLSReloadUnderLoad(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	dir := t.TempDir()
	c1, k1, s1 := ca.issue(t, leafOpts{names: []string{"api.test"}})
	cf, kf := writePair(t, dir, "api", c1, k1)
	w := startWeir(t, tlsCfg(startEcho(t, "e1"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}]}`, cf, kf)))
	client := &tls.Config{ServerName: "api.test", RootCAs: ca.pool}
	held := dialHeld(t, w.Addr, client)
	held.get(t)

	// Load: four clients, a new connection per request, from before the
	// first reload until after the last.
	var (
		stop     atomic.Bool
		ok, fail atomic.Int64
		mu       sync.Mutex
		served   = map[string]int64{} // serial -> requests
		firstErr error
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000 && !stop.Load(); i++ {
				st, code, _, err := tlsGet(w.Addr, client, "/load")
				mu.Lock()
				if err != nil || code != 200 {
					fail.Add(1)
					if firstErr == nil {
						firstErr = fmt.Errorf("status %d, %v", code, err)
					}
				} else {
					ok.Add(1)
					served[leafSerial(st)]++
				}
				mu.Unlock()
			}
		}()
	}
	loadDone := false
	endLoad := func() {
		if !loadDone {
			loadDone = true
			stop.Store(true)
			wg.Wait()
		}
	}
	defer endLoad()
	time.Sleep(300 * time.Millisecond)

	// A renewed pair by file change.
	c2, k2, s2 := ca.issue(t, leafOpts{rsa: true, names: []string{"api.test"}})
	writePair(t, dir, "api", c2, k2)
	waitServes(t, w.Addr, ca, s2.String())
	held.get(t)

	// A broken pair: a key that does not match, then garbage.
	_, k3, _ := ca.issue(t, leafOpts{names: []string{"api.test"}})
	writePair(t, dir, "api", c1, k3)
	waitLog(t, w, "tls certificates refused", "private key does not match")
	if err := os.WriteFile(cf, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitLog(t, w, "tls certificates refused", "failed to find any PEM data in certificate input")
	if !strings.Contains(w.Logs(), cf) {
		t.Errorf("the log does not name %s", cf)
	}
	st, code, _, err := tlsGet(w.Addr, client, "/")
	if err != nil || code != 200 || leafSerial(st) != s2.String() {
		t.Fatalf("after broken pairs: %v %d serial %s, want the running %s", err, code, leafSerial(st), s2)
	}
	held.get(t)

	// A whole pair again: the poller takes it.
	writePair(t, dir, "api", c1, k1)
	waitServes(t, w.Addr, ca, s1.String())

	// SIGHUP reloads too. A renewed pair of the same sizes with the old
	// mtimes put back is invisible to the poller (it looks at size and
	// mtime), so only the signal can bring it in.
	var c5, k5 []byte
	var s5 *big.Int
	for i := 0; ; i++ {
		c5, k5, s5 = ca.issue(t, leafOpts{names: []string{"api.test"}})
		if len(c5) == len(c1) && len(k5) == len(k1) {
			break
		}
		if i == 100 {
			t.Fatal("could not issue a pair of the same sizes")
		}
	}
	stCert, _ := os.Stat(cf)
	stKey, _ := os.Stat(kf)
	writePair(t, dir, "api", c5, k5)
	_ = os.Chtimes(cf, stCert.ModTime(), stCert.ModTime())
	_ = os.Chtimes(kf, stKey.ModTime(), stKey.ModTime())
	time.Sleep(1500 * time.Millisecond) // three polls
	if st, _, _, err := tlsGet(w.Addr, client, "/"); err != nil || leafSerial(st) != s1.String() {
		t.Fatalf("before SIGHUP: %v, serial %s; want the running %s (the poller should not have seen the change)", err, leafSerial(st), s1)
	}
	if err := w.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitServes(t, w.Addr, ca, s5.String())
	time.Sleep(300 * time.Millisecond) // more load on the last certificate
	held.get(t)
	endLoad()

	mu.Lock()
	defer mu.Unlock()
	if fail.Load() != 0 || ok.Load() < 50 {
		t.Fatalf("%d requests ok, %d failed (first: %v)", ok.Load(), fail.Load(), firstErr)
	}
	for serial, n := range served {
		if serial != s1.String() && serial != s2.String() && serial != s5.String() {
			t.Errorf("%d requests were served a certificate with serial %s, not one of the files'", n, serial)
		}
	}
	if served[s2.String()] == 0 || served[s5.String()] == 0 {
		t.Errorf("the load saw the file-change renewal %d times and the SIGHUP one %d times; want both", served[s2.String()], served[s5.String()])
	}
	t.Logf("%d requests on new connections across two reloads and two refused pairs, none failed; by serial: %v", ok.Load(), served)
}

// heldConn is one TLS connection kept open across reloads and renewals,
// for keep-alive requests one after another.
type heldConn struct {
	conn *tls.Conn
	br   *bufio.Reader
}

func dialHeld(t *testing.T, addr string, cfg *tls.Config) *heldConn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &heldConn{conn: conn, br: bufio.NewReader(conn)}
}

// get makes one keep-alive request on the held connection and fails the
// test unless it answers 200.
func (h *heldConn) get(t *testing.T) {
	t.Helper()
	_ = h.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(h.conn, "GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n"); err != nil {
		t.Fatalf("request on the held connection: %v", err)
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		t.Fatalf("response on the held connection: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("held connection: status %d", resp.StatusCode)
	}
}

func waitLog(t *testing.T, w *weir, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(w.Logs(), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q\n%s", subs, w.Logs())
}

func waitServes(t *testing.T, addr string, ca *testCA, serial string) {
	t.Helper()
	var st tls.ConnectionState
	var err error
	if !waitUntil(5*time.Second, 20*time.Millisecond, func() bool {
		st, _, _, err = tlsGet(addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool}, "/")
		return err == nil && leafSerial(st) == serial
	}) {
		t.Fatalf("serial %s never served (last %s, %v)", serial, leafSerial(st), err)
	}
}

// TestTLSValidate: weir validate loads every pair: an expired certificate
// is a warning with its date (exit 0), a key that does not match is an
// error naming the place and the files (exit 1).
func TestTLSValidate(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	dir := t.TempDir()
	notAfter := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	c, k, _ := ca.issue(t, leafOpts{names: []string{"old.test"}, notBefore: notAfter.Add(-time.Hour), notAfter: notAfter})
	cf, kf := writePair(t, dir, "old", c, k)
	_, other, _ := ca.issue(t, leafOpts{names: []string{"x.test"}})
	_, of := writePair(t, dir, "other", c, other)

	run := func(tlsSection string) (string, int) {
		file := filepath.Join(t.TempDir(), "weir.yaml")
		cfg := fmt.Sprintf("listen: [\":0\", {address: \"127.0.0.1:0\", tls: %s}]\n", tlsSection)
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return validateFile(t, file)
	}
	out, code := run(fmt.Sprintf(`{certificates: [{cert: %q, key: %q}]}`, cf, kf))
	want := fmt.Sprintf("listen[1].tls.certificates[0]: certificate %s expired on %s", cf, notAfter.UTC().Format(time.RFC3339))
	if code != 0 || !strings.Contains(out, "warning: ") || !strings.Contains(out, want) {
		t.Errorf("expired: exit %d, output:\n%s\nwant a warning with %q", code, out, want)
	}
	out, code = run(fmt.Sprintf(`{certificates: [{cert: %q, key: %q}]}`, cf, of))
	want = fmt.Sprintf("listen[1].tls.certificates[0]: loading certificate %s with key %s: tls: private key does not match public key", cf, of)
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("mismatched: exit %d, output:\n%s\nwant %q", code, out, want)
	}
	out, code = run(`{certificates: [{cert: missing.pem, key: missing-key.pem}]}`)
	if code != 1 || !strings.Contains(out, "reading certificate file") || !strings.Contains(out, "missing.pem") {
		t.Errorf("missing: exit %d, output:\n%s", code, out)
	}
}

// TestTLSClientAuth: require refuses a client without a certificate or
// with one from another CA at the handshake, and serves one the CA
// signed; optional serves a client without one.
func TestTLSClientAuth(t *testing.T) {
	ca, clientCA, cf, kf, caFile := clientAuthFiles(t)
	stranger := newTestCA(t, "stranger CA")
	clientPair := func(ca *testCA) tls.Certificate {
		cp, kp, _ := ca.issue(t, leafOpts{client: true, names: []string{"client.test"}})
		pair, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	good, bad := clientPair(clientCA), clientPair(stranger)
	up := startEcho(t, "e1")
	for _, mode := range []string{"require", "optional", "none"} {
		w := startWeir(t, tlsCfg(up, fmt.Sprintf(`{certificates: [{cert: %q, key: %q}], client_auth: {mode: %s, ca: %q}}`, cf, kf, mode, caFile)))
		// asked counts the server's certificate requests: Go's client
		// calls GetClientCertificate only for one.
		var asked atomic.Int64
		base := func(cert *tls.Certificate) *tls.Config {
			// Go's client sends no certificate the server's CA list does
			// not name; force it, as a hostile client would.
			return &tls.Config{ServerName: "api.test", RootCAs: ca.pool,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					asked.Add(1)
					if cert == nil {
						return &tls.Certificate{}, nil
					}
					return cert, nil
				}}
		}
		_, code, _, err := tlsGet(w.Addr, base(nil), "/")
		if mode == "require" && err == nil {
			t.Errorf("require: a client without a certificate got %d", code)
		}
		if mode != "require" && (err != nil || code != 200) {
			t.Errorf("%s: a client without a certificate: %v %d", mode, err, code)
		}
		_, code, _, err = tlsGet(w.Addr, base(&bad), "/")
		if mode != "none" && err == nil {
			t.Errorf("%s: a certificate from another CA got %d", mode, code)
		}
		if _, code, _, err := tlsGet(w.Addr, base(&good), "/"); err != nil || code != 200 {
			t.Errorf("%s: a good client certificate: %v %d", mode, err, code)
		}
		// none never asks for a certificate, so the stranger's is never
		// sent and its request is served.
		if mode == "none" && (err != nil || code != 200 || asked.Load() != 0) {
			t.Errorf("none: the server asked for a client certificate %d times; a stranger's request: %v %d", asked.Load(), err, code)
		}
		if mode != "none" && asked.Load() != 3 {
			t.Errorf("%s: the server asked for a client certificate on %d of 3 handshakes", mode, asked.Load())
		}
	}
}

// TestTLSSessionResumptionAcrossNodes: two nodes sharing a Redis share
// their session ticket keys, so a session from node A resumes on node B.
func TestTLSSessionResumptionAcrossNodes(t *testing.T) {
	rs := testredis.Start(t)
	ca := newTestCA(t, "weir test CA")
	c, k, _ := ca.issue(t, leafOpts{names: []string{"api.test"}})
	cf, kf := writePair(t, t.TempDir(), "api", c, k)
	cfg := tlsCfg(startEcho(t, "e1"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}]}`, cf, kf)) +
		"redis: {addrs: [\"" + rs.Addr + "\"]}\n"
	a := startWeir(t, cfg)
	b := startWeir(t, cfg)
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		cache := tls.NewLRUClientSessionCache(4)
		cl := &tls.Config{ServerName: "api.test", RootCAs: ca.pool, ClientSessionCache: cache, MaxVersion: v}
		st, code, _, err := tlsGet(a.Addr, cl, "/")
		if err != nil || code != 200 || st.DidResume {
			t.Fatalf("%x: first connection to A: %v %d resumed=%v", v, err, code, st.DidResume)
		}
		st, code, _, err = tlsGet(b.Addr, cl, "/")
		if err != nil || code != 200 || !st.DidResume {
			t.Fatalf("%x: connection to B: %v %d resumed=%v; want a resumed session", v, err, code, st.DidResume)
		}
	}
	if n, err := rs.Do("HLEN", "{weir}:tls:ticket_keys"); err != nil || n == ":0" {
		t.Fatalf("HLEN {weir}:tls:ticket_keys = %q, %v", n, err)
	}
}

// TestTLSOCSPStapling: a certificate that names an OCSP responder gets the
// responder's answer stapled to its handshakes, fetched in the background
// (a handshake before it has no staple, and does not wait).
func TestTLSOCSPStapling(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	var asked atomic.Int64
	responder := serveHTTP(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		resp, err := ocsp.CreateResponse(ca.cert, ca.cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}, ca.key)
		if err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		rw.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = rw.Write(resp)
	}))

	c, k, serial := ca.issue(t, leafOpts{names: []string{"api.test"}, ocsp: "http://" + responder + "/"})
	cf, kf := writePair(t, t.TempDir(), "api", c, k)
	w := startWeir(t, tlsCfg(startEcho(t, "e1"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}]}`, cf, kf)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, code, _, err := tlsGet(w.Addr, &tls.Config{ServerName: "api.test", RootCAs: ca.pool}, "/")
		if err != nil || code != 200 {
			t.Fatalf("request: %v %d", err, code)
		}
		if len(st.OCSPResponse) > 0 {
			r, err := ocsp.ParseResponseForCert(st.OCSPResponse, st.PeerCertificates[0], ca.cert)
			if err != nil || r.Status != ocsp.Good || r.SerialNumber.Cmp(serial) != 0 {
				t.Fatalf("staple: %v %+v", err, r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OCSP staple after 10s (responder asked %d times)\n%s", asked.Load(), w.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if asked.Load() != 1 {
		t.Errorf("the responder was asked %d times; want once (the answer is good for an hour)", asked.Load())
	}
}

// TestTLSHandshakeFloodIsBounded: connections that never finish a
// handshake hold a worker for at most server.read_timeout, and no more
// of them than server.max_conns: past the cap a new connection is closed
// at once instead of queuing, and once the silent ones time out the
// listener serves again.
func TestTLSHandshakeFloodIsBounded(t *testing.T) {
	ca := newTestCA(t, "weir test CA")
	c, k, _ := ca.issue(t, leafOpts{names: []string{"api.test"}})
	cf, kf := writePair(t, t.TempDir(), "api", c, k)
	cfg := strings.Replace(tlsCfg(startEcho(t, "e1"), fmt.Sprintf(`{certificates: [{cert: %q, key: %q}]}`, cf, kf)),
		"server: {read_timeout: 2s}", "server: {read_timeout: 2s, max_conns: 2}", 1)
	w := startWeir(t, cfg)
	client := &tls.Config{ServerName: "api.test", RootCAs: ca.pool}
	if _, code, _, err := tlsGet(w.Addr, client, "/"); err != nil || code != 200 {
		t.Fatalf("before the flood: %v %d", err, code)
	}
	// Two silent connections, each held by a worker. One the server
	// refused (closed at once) because the worker of the request above
	// was not free yet is dialled again, until both are held.
	silent := make([]net.Conn, 2)
	defer func() {
		for _, s := range silent {
			if s != nil {
				s.Close()
			}
		}
	}()
	for attempt := 0; ; attempt++ {
		held := 0
		for i, s := range silent {
			if s == nil {
				var err error
				if s, err = net.Dial("tcp", w.Addr); err != nil {
					t.Fatal(err)
				}
				silent[i] = s
			}
			_ = s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := s.Read(make([]byte, 1)); err != nil && os.IsTimeout(err) {
				held++
			} else {
				s.Close()
				silent[i] = nil
			}
		}
		if held == 2 {
			break
		}
		if attempt == 20 {
			t.Fatal("the server never held two silent connections")
		}
	}
	start := time.Now()
	if _, _, _, err := tlsGet(w.Addr, client, "/"); err == nil {
		t.Fatal("a connection past max_conns was served while the silent ones hold every worker")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the connection past max_conns took %s to be refused; want at once", d)
	}
	for _, s := range silent {
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("silent connection: %v; want EOF after the read timeout", err)
		}
	}
	if _, code, _, err := tlsGet(w.Addr, client, "/"); err != nil || code != 200 {
		t.Fatalf("after the flood: %v %d", err, code)
	}
}
