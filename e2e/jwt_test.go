package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestJWTThroughTheBinary: the jwt plugin in the real gateway accepts
// tokens it has never seen (each request a new one), sends the consumer
// and a claim upstream, and refuses forged and malformed ones with a
// Bearer challenge and the reason counted — including claims followed by
// extra bytes, which golang-jwt's decoder used to ignore.
func TestJWTThroughTheBinary(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-e2e"
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
consumers:
  - {name: alice, credentials: {jwt: [{issuer: alice-app, algorithm: HS256, secret: "`+secret+`"}]}}
routes:
  - name: api
    paths: ["/api"]
    service: a
    plugins: [{name: jwt, config: {claims_to_headers: {sub: X-User}, hide_credentials: true}}]
`, "UP", up))
	c := newClient(w.Addr)
	signed := func(header, claims string) string { return signHS256(secret, header, claims) }
	exp := time.Now().Add(time.Hour).Unix()
	hdr := `{"alg":"HS256","typ":"JWT"}`
	for i := 0; i < 50; i++ {
		tok := signed(hdr, fmt.Sprintf(`{"iss":"alice-app","sub":"user-%d","jti":"%d","exp":%d}`, i, i, exp))
		code, body, _ := get(t, c, "/api", map[string]string{"Authorization": "Bearer " + tok})
		if code != 200 {
			t.Fatalf("token %d: %d %s", i, code, body)
		}
		var r struct {
			Headers map[string]string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		if r.Headers["X-Consumer-Name"] != "alice" || r.Headers["X-User"] != fmt.Sprintf("user-%d", i) || r.Headers["Authorization"] != "" {
			t.Fatalf("token %d: upstream saw %v", i, r.Headers)
		}
	}
	good := signed(hdr, fmt.Sprintf(`{"iss":"alice-app","sub":"u","exp":%d}`, exp))
	for _, tc := range []struct{ name, tok, reason string }{
		{"claims followed by bytes", signed(hdr, fmt.Sprintf(`{"iss":"alice-app","sub":"u","exp":%d}{"sub":"root"}`, exp)), "malformed"},
		{"expired", signed(hdr, `{"iss":"alice-app","sub":"u","exp":1000}`), "expired"},
		{"key in the header", signed(`{"alg":"HS256","jwk":{"kty":"oct","k":"AA"}}`, fmt.Sprintf(`{"iss":"alice-app","exp":%d}`, exp)), "forbidden_header"},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + strings.Split(good, ".")[1] + ".AA", "bad_alg"},
		{"tampered signature", good[:len(good)-2] + "AA", "bad_signature"},
		{"unknown issuer", signed(hdr, fmt.Sprintf(`{"iss":"mallory","exp":%d}`, exp)), "unknown_key"},
	} {
		metric := `weir_auth_failures_total{plugin="jwt",route="api",reason="` + tc.reason + `"}`
		before := max(w.metric(metric), 0)
		code, body, h := get(t, c, "/api", map[string]string{"Authorization": "Bearer " + tc.tok})
		if code != 401 || !strings.Contains(string(h.Peek("WWW-Authenticate")), `error="invalid_token"`) {
			t.Fatalf("%s: %d %q %s", tc.name, code, h.Peek("WWW-Authenticate"), body)
		}
		if after := w.metric(metric); after != before+1 {
			t.Fatalf("%s: %s went %v → %v", tc.name, metric, before, after)
		}
	}
}

// TestJWTUnseenTokenAllocsPerRequest: verifying a token the gateway has
// never seen (each request a new one, so the cache never answers) costs a
// few allocations more than a plain request, the identity it grants:
// header and claims are read in place, their members located once, and
// neither string reads nor the HMAC sum escape. Counted with the Go
// runtime's own malloc counter from /metrics.
func TestJWTUnseenTokenAllocsPerRequest(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-e2e"
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
consumers:
  - {name: alice, credentials: {jwt: [{issuer: alice-app, algorithm: HS256, secret: "`+secret+`"}]}}
routes:
  - name: api
    paths: ["/api"]
    service: a
    plugins: [{name: jwt, config: {cache_size: 0}}]
  - name: plain
    paths: ["/"]
    service: a
`, "UP", up))
	c := newClient(w.Addr)
	exp := time.Now().Add(time.Hour).Unix()
	const n = 2000
	toks := make([]string, n)
	for i := range toks {
		toks[i] = signHS256(secret, `{"alg":"HS256","typ":"JWT"}`,
			fmt.Sprintf(`{"iss":"alice-app","sub":"user-%d","scope":"read write","iat":%d,"exp":%d}`, i, exp-3600, exp))
	}
	perRequest := func(path string) float64 {
		run := func(from, to int) {
			for i := from; i < to; i++ {
				if code, body, _ := get(t, c, path, map[string]string{"Authorization": "Bearer " + toks[i]}); code != 200 {
					t.Fatalf("%s token %d: %d %s", path, i, code, body)
				}
			}
		}
		run(0, 200) // warm the pools and the connection
		before := gatewayMallocs(t, w)
		run(200, n)
		return (gatewayMallocs(t, w) - before) / (n - 200)
	}
	plain, jwt := perRequest("/plain"), perRequest("/api")
	t.Logf("allocations per request: plain %.2f, jwt with an unseen HS256 token %.2f", plain, jwt)
	if jwt-plain > 4.5 {
		t.Fatalf("an unseen token costs %.2f allocations per request in the gateway, want at most 4.5", jwt-plain)
	}
}

// signHS256 is a compact JWS of header and claims (JSON text) signed with
// HMAC-SHA256 under secret.
func signHS256(secret, header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	in := enc([]byte(header)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + enc(m.Sum(nil))
}
