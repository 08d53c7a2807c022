package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestJWTConsumerOutsideAlgorithmsRefused: a consumer whose jwt
// credential's algorithm some jwt route does not list (that route would
// answer its every token bad_alg) is refused the same way from the admin
// API (POST and PUT: 400, nothing changed) and from a reloaded file as
// from a file at start, with one message naming the route's plugin, the
// consumer, the credential and the fix. A credential every route takes
// is accepted and serves, and once the narrow route is gone the refused
// consumer is taken: the refusal follows the running routes.
func TestJWTConsumerOutsideAlgorithmsRefused(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-e2e"
	up := startEcho(t, "e1")
	cfg := func(consumers string) string {
		return strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: s3cret}
services: [{name: a, targets: [{url: "http://UP"}]}]
consumers:
  - {name: alice, credentials: {key_auth: [{key: alice-secret-key}]}}
`+consumers+`
routes:
  - {name: keyed, paths: ["/keyed"], service: a, plugins: [{name: key_auth}]}
  - {name: hs, paths: ["/hs"], service: a, plugins: [{name: jwt}]}
  - {name: narrow, paths: ["/narrow"], service: a, plugins: [{name: key_auth, enabled: false}, {name: jwt, config: {algorithms: [RS256, ES256]}}]}
`, "UP", up)
	}
	w := startWeir(t, cfg(""))
	alice := map[string]string{"X-API-Key": "alice-secret-key"}
	hsCred := `{"jwt":[{"issuer":"bob-app","algorithm":"HS256","secret":"` + secret + `"}]}`
	const want = `routes[2].plugins[1] (jwt): consumer "bob": jwt credential 0: algorithm HS256 is not in the plugin's algorithms list [RS256 ES256]; add HS256 to the list, or give the credential an algorithm of the list`

	// The message a file gives.
	file := filepath.Join(t.TempDir(), "bob.yaml")
	bobLine := `  - {name: bob, credentials: {jwt: [{issuer: bob-app, algorithm: HS256, secret: "` + secret + `"}]}}`
	if err := os.WriteFile(file, []byte(strings.NewReplacer("{{LISTEN}}", w.Addr, "{{ADMIN}}", w.Admin).Replace(cfg(bobLine))), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := validateFile(t, file); code == 0 || !strings.Contains(out, file+": "+want) {
		t.Fatalf("weir validate: exit %d\n%s\nwant %q", code, out, want)
	}

	v := w.configVersion()
	code, body := adminRaw(t, w, "POST", "/consumers", `{"name":"bob","credentials":`+hsCred+`}`)
	if code != 400 || !strings.Contains(string(body), jsonQuoted(t, "admin API: "+want)) {
		t.Fatalf("POST bob: %d %s\nwant 400 with %q", code, body, want)
	}
	code, body = adminRaw(t, w, "PUT", "/consumers/alice", `{"credentials":`+strings.ReplaceAll(hsCred, "bob-app", "alice-app")+`}`)
	if code != 400 || !strings.Contains(string(body), jsonQuoted(t, `admin API: routes[2].plugins[1] (jwt): consumer "alice": jwt credential 0: algorithm HS256 is not in the plugin's algorithms list`)) {
		t.Fatalf("PUT alice: %d %s; want 400", code, body)
	}
	if got := w.configVersion(); got != v {
		t.Fatalf("refused writes changed the config: version %d, want %d", got, v)
	}
	if code, _ := adminRaw(t, w, "GET", "/consumers/bob", ""); code != 404 {
		t.Fatalf("GET /consumers/bob after a refused POST: %d, want 404", code)
	}
	if st := proxyStatus(t, w, "/keyed", alice); st != 200 {
		t.Fatalf("alice lost her key after a refused PUT: %d", st)
	}

	// A reloaded file: the narrow route's instance is kept (its config
	// is unchanged), and still refuses bob.
	w.write(cfg(bobLine))
	_ = w.cmd.Process.Signal(syscall.SIGHUP)
	if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool { return strings.Contains(w.Logs(), "config refused") }) {
		t.Fatalf("a reload with bob was not refused\n%s", w.Logs())
	}
	if !strings.Contains(w.Logs(), jsonQuoted(t, want)) {
		t.Fatalf("the reload's refusal does not say %q\n%s", want, w.Logs())
	}
	if st := w.status(); st["consumers"] != float64(1) || st["last_reload_successful"] != false {
		t.Fatalf("after the refused reload: %v", st)
	}
	w.write(cfg(""))

	// A credential every route takes (ES256) is accepted and serves.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	esCred, _ := json.Marshal(map[string]any{"jwt": []map[string]string{{"issuer": "erin-app", "algorithm": "ES256", "public_key": pub}}})
	if code, body := adminRaw(t, w, "POST", "/consumers", `{"name":"erin","credentials":`+string(esCred)+`}`); code != 201 {
		t.Fatalf("POST erin (ES256): %d %s", code, body)
	}
	enc := base64.RawURLEncoding.EncodeToString
	exp := time.Now().Add(time.Hour).Unix()
	in := enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc(fmt.Appendf(nil, `{"iss":"erin-app","exp":%d}`, exp))
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	if st := proxyStatus(t, w, "/narrow", map[string]string{"Authorization": "Bearer " + in + "." + enc(sig)}); st != 200 {
		t.Fatalf("erin's ES256 token on /narrow: %d", st)
	}

	// Without the narrow route, bob is taken and his tokens serve.
	if code, body := adminRaw(t, w, "DELETE", "/routes/narrow", ""); code != 200 {
		t.Fatalf("DELETE /routes/narrow: %d %s", code, body)
	}
	if code, body := adminRaw(t, w, "POST", "/consumers", `{"name":"bob","credentials":`+hsCred+`}`); code != 201 {
		t.Fatalf("POST bob without the narrow route: %d %s", code, body)
	}
	in = enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(fmt.Appendf(nil, `{"iss":"bob-app","exp":%d}`, exp))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	if st := proxyStatus(t, w, "/hs", map[string]string{"Authorization": "Bearer " + in + "." + enc(m.Sum(nil))}); st != 200 {
		t.Fatalf("bob's HS256 token on /hs: %d", st)
	}
}

// jsonQuoted is s as it appears inside a JSON string.
func jsonQuoted(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[1 : len(b)-1])
}
