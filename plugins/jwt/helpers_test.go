package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// Test keys are generated once per test binary.
var (
	keysOnce             sync.Once
	rsaKey, rsaKey2      *rsa.PrivateKey
	ecKey256, ecKey384   *ecdsa.PrivateKey
	edPub                ed25519.PublicKey
	edKey                ed25519.PrivateKey
	rsaPubPEM, rsa2PEM   string
	ec256PEM, ec384PEM   string
	edPubPEM, rsa1024PEM string
)

const hsSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" // 64 bytes

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		ecKey256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecKey384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		edPub, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		must(err)
		rsaPubPEM = pubPEM(&rsaKey.PublicKey)
		rsa2PEM = pubPEM(&rsaKey2.PublicKey)
		ec256PEM = pubPEM(&ecKey256.PublicKey)
		ec384PEM = pubPEM(&ecKey384.PublicKey)
		edPubPEM = pubPEM(edPub)
		rsa1024PEM = pubPEM(&small.PublicKey)
	})
}

func pubPEM(k any) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// claims returns a fresh valid claim set for issuer iss.
func claims(iss string) gojwt.MapClaims {
	now := time.Now()
	return gojwt.MapClaims{
		"iss": iss,
		"sub": "user-1",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// sign signs claims with alg and key, adding header fields from hdr.
func sign(t testing.TB, alg string, key any, c gojwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	tok := gojwt.NewWithClaims(gojwt.GetSigningMethod(alg), c)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return s
}

func b64(v any) string {
	var raw []byte
	switch x := v.(type) {
	case string:
		raw = []byte(x)
	case []byte:
		raw = x
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// hmacForge builds an HS* token by hand over arbitrary header and payload
// (used for "alg" spellings golang-jwt refuses to sign).
func rawToken(header, payload any, sig string) string {
	return b64(header) + "." + b64(payload) + "." + sig
}

func consumer(name string, groups []string, creds ...string) *sdk.Consumer {
	c := &sdk.Consumer{Name: name, Groups: groups, Credentials: sdk.Credentials{}}
	if len(creds) > 0 {
		l := sdk.CredentialList{Plugin: "jwt"}
		for _, cr := range creds {
			l.List = append(l.List, json.RawMessage(cr))
		}
		c.Credentials = sdk.Credentials{l}
	}
	return c
}

func credJSON(fields map[string]string) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

// newFilter builds a filter with consumers, failing the test on error.
func newFilter(t testing.TB, cfg string, consumers ...*sdk.Consumer) *filter {
	t.Helper()
	return plugintest.New[*filter](t, New, &sdk.Build{Route: "test-route", Consumers: sdk.NewConsumers(consumers)}, cfg)
}

// apiRequest is a client request for /api with the given headers.
func apiRequest(headers map[string]string) plugintest.Request {
	return plugintest.Request{URI: "http://example.com/api", Headers: headers, Path: "/api"}
}

// run sends one request with the given request headers through f.
func run(t testing.TB, f *filter, headers map[string]string) plugintest.Result {
	t.Helper()
	return plugintest.Run(t, f, apiRequest(headers))
}

func bearerHdr(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// wantRefused is plugintest.WantRefused, and a 401 must carry a Bearer
// challenge (RFC 6750 §3).
func wantRefused(t *testing.T, r plugintest.Result, code int, bodyPart string) {
	t.Helper()
	plugintest.WantRefused(t, r, code, bodyPart)
	if code == 401 && !strings.HasPrefix(r.Challenge, `Bearer realm="`) {
		t.Fatalf("401 without a Bearer challenge: %q", r.Challenge)
	}
}

// newCtx builds a request context with headers; the caller releases c.
func newCtx(headers map[string]string) (*fasthttp.RequestCtx, *sdk.Ctx) {
	return plugintest.NewRequestCtx("http://example.com/api", "/api", headers)
}
