package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// issueClient has ca sign a client certificate with the subject common
// name cn and the SANs sans (URIs when they have a scheme, else DNS
// names), and returns it with its SHA-256 fingerprint in the
// colon-separated upper-case form openssl prints.
func issueClient(t testing.TB, ca *testCA, cn string, sans ...string) (tls.Certificate, string) {
	t.Helper()
	o := leafOpts{cn: cn, client: true}
	for _, s := range sans {
		if strings.Contains(s, "://") {
			o.uris = append(o.uris, s)
		} else {
			o.names = append(o.names, s)
		}
	}
	certPEM, keyPEM, _ := ca.issue(t, o)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pair.Certificate[0])
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	return pair, strings.Join(hexes, ":")
}

// TestMTLSConsumerMapping: on a listener whose client_auth is optional,
// mtls_auth maps the verified client certificate to a consumer by subject
// CN, by fingerprint, by DNS SAN or by URI SAN, so X-Consumer-Name reaches the
// upstream, acl decides by the consumer's groups and rate_limit counts per
// consumer. An unmapped certificate and a missing one (over TLS or
// cleartext) get 401 on the route that requires one, while a route
// without the plugin serves a client without a certificate; a certificate
// from another CA fails the handshake and never reaches a plugin or the
// upstream.
func TestMTLSConsumerMapping(t *testing.T) {
	ca, clientCA, cf, kf, caFile := clientAuthFiles(t)
	stranger := newTestCA(t, "stranger CA")
	alice, _ := issueClient(t, clientCA, "alice")
	bob, bobFP := issueClient(t, clientCA, "bob-laptop-7")
	carol, _ := issueClient(t, clientCA, "carol-box", "spiffe://weir.test/ns/ops/sa/carol")
	dave, _ := issueClient(t, clientCA, "dave-box", "dave.clients.test")
	mallory, _ := issueClient(t, clientCA, "mallory")
	outsider, _ := issueClient(t, stranger, "alice")

	up := startEcho(t, "e1")
	plain := freeAddr(t)
	w := startWeir(t, fmt.Sprintf(`
listen:
  - address: "{{LISTEN}}"
    tls: {certificates: [{cert: %q, key: %q}], client_auth: {mode: optional, ca: %q}}
  - %q
admin: {listen: "{{ADMIN}}"}
server: {read_timeout: 2s}
services:
  - name: echo
    targets: [{url: "http://%s"}]
consumers:
  - {name: alice, groups: [staff], credentials: {mtls_auth: [{subject: alice}]}}
  - {name: bob, groups: [staff], credentials: {mtls_auth: [{fingerprint: %q, id: bob-laptop}]}}
  - {name: carol, groups: [ops], credentials: {mtls_auth: [{san: "spiffe://weir.test/ns/ops/sa/carol"}]}}
  - {name: dave, groups: [staff], credentials: {mtls_auth: [{san: dave.clients.test}]}}
routes:
  - name: api
    paths: ["/api"]
    service: echo
    plugins:
      - {name: mtls_auth}
      - {name: acl, config: {allow: [staff]}}
      - {name: rate_limit, config: {rate: 3, per: 1h, burst: 3, key: consumer}}
  - {name: open, paths: ["/open"], service: echo}
`, cf, kf, caFile, plain, up, bobFP))

	do := func(who string, cert *tls.Certificate, path string) (int, string) {
		t.Helper()
		cfg := &tls.Config{ServerName: "api.test", RootCAs: ca.pool}
		if cert != nil {
			// Forced rather than offered by CA name, so that the outsider's
			// certificate is sent too, as a hostile client would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		_, code, body, err := tlsGet(w.Addr, cfg, path)
		if err != nil {
			t.Fatalf("%s %s: %v", who, path, err)
		}
		return code, body
	}
	consumerUpstream := func(body string) string {
		var r struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		return r.Headers["X-Consumer-Name"]
	}
	wantRefused := func(who string, code int, body string, status int, msg string) {
		t.Helper()
		if code != status || !strings.Contains(body, fmt.Sprintf(`"status":%d`, status)) || !strings.Contains(body, msg) {
			t.Errorf("%s: got %d %s, want %d %q", who, code, body, status, msg)
		}
	}

	// By subject CN, by fingerprint, by DNS SAN: each its own consumer
	// upstream.
	for _, tc := range []struct {
		who  string
		cert *tls.Certificate
	}{{"alice", &alice}, {"bob", &bob}, {"dave", &dave}} {
		code, body := do(tc.who, tc.cert, "/api")
		if code != 200 || consumerUpstream(body) != tc.who {
			t.Errorf("%s: got %d with X-Consumer-Name %q upstream (%s)", tc.who, code, consumerUpstream(body), body)
		}
	}
	// By URI SAN, but carol is not in the allowed group: acl refuses.
	code, body := do("carol", &carol, "/api")
	wantRefused("carol", code, body, 403, "forbidden")
	code, body = do("mallory", &mallory, "/api")
	wantRefused("unmapped certificate", code, body, 401, "unknown client certificate")
	code, body = do("no certificate", nil, "/api")
	wantRefused("no certificate", code, body, 401, "missing client certificate")
	if code, body := do("no certificate", nil, "/open"); code != 200 {
		t.Errorf("a route without mtls_auth on the optional listener: %d %s", code, body)
	}
	status, body, _ := get(t, newClient(plain), "/api", nil)
	wantRefused("cleartext", status, body, 401, "missing client certificate")

	// The rate limit is per consumer: alice spends her 3 (one above),
	// bob keeps his.
	for i := 2; i <= 4; i++ {
		code, body := do("alice", &alice, "/api")
		if want := map[bool]int{true: 200, false: 429}[i <= 3]; code != want {
			t.Fatalf("alice's request %d: %d %s, want %d", i, code, body, want)
		}
	}
	if code, body := do("bob", &bob, "/api"); code != 200 || consumerUpstream(body) != "bob" {
		t.Errorf("bob after alice ran out: %d %s", code, body)
	}

	// A resumed session sends no certificate; the one verified at the
	// full handshake still identifies the consumer.
	resume := &tls.Config{ServerName: "api.test", RootCAs: ca.pool, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	resume.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &carol, nil }
	for i := range 2 {
		st, code, body, err := tlsGet(w.Addr, resume, "/api")
		if err != nil || code != 403 || st.DidResume != (i == 1) {
			t.Errorf("carol, connection %d: resumed %v, %v %d %s; want 403 (mapped, then refused by acl)", i, st.DidResume, err, code, body)
		}
	}

	// The outsider's handshake fails: no request is made, so no plugin
	// (mtls_auth would map the subject "alice") and no upstream sees it.
	requests := `weir_requests_total{route="api"`
	before, failedBefore := w.metricSum(requests), w.metricSum(`weir_tls_handshakes_total{version="1.3",result="failed"}`)
	cfg := &tls.Config{ServerName: "api.test", RootCAs: ca.pool}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &outsider, nil }
	if _, code, _, err := tlsGet(w.Addr, cfg, "/api"); err == nil {
		t.Errorf("a certificate from another CA (same subject as alice) got %d", code)
	}
	if after, failed := w.metricSum(requests), w.metricSum(`weir_tls_handshakes_total{version="1.3",result="failed"}`); after != before || failed != failedBefore+1 {
		t.Errorf("after the outsider: route api answered %v requests (before %v), failed TLS 1.3 handshakes %v (before %v); want no request, one failed handshake",
			after, before, failed, failedBefore)
	}
}

// TestMTLSValidate: weir validate names a malformed fingerprint, a subject
// written as a DN and two consumers claiming one certificate.
func TestMTLSValidate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "weir.yaml")
	cfg := `
listen: "127.0.0.1:0"
services: [{name: a, targets: [{url: "http://127.0.0.1:9"}]}]
consumers:
  - {name: alice, credentials: {mtls_auth: [{fingerprint: "AB:CD:EF"}, {subject: "CN=alice"}]}}
  - {name: bob, credentials: {mtls_auth: [{subject: svc}]}}
  - {name: carol, credentials: {mtls_auth: [{subject: svc}]}}
routes:
  - {name: r, paths: ["/"], service: a, plugins: [{name: mtls_auth, config: {match: [fingerprint, cn]}}]}
`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := validateFile(t, file)
	if code != 1 {
		t.Fatalf("validate: exit %d, want 1; output:\n%s", code, out)
	}
	for _, want := range []string{
		`consumer "alice": mtls_auth[0]: fingerprint "AB:CD:EF" is not a SHA-256 fingerprint`,
		`consumer "alice": mtls_auth[1]: subject "CN=alice": give the common name alone, e.g. "alice"`,
		`consumers "bob" and "carol" share the client certificate subject "svc"`,
		`match[1]: "cn" is not one of subject, san, fingerprint`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}
