package jwt

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"go.uber.org/goleak"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// jwksServer is a real JWKS endpoint on loopback whose document, status
// and latency a test changes while the plugin runs.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     []byte
	status  int
	delay   time.Duration
	fetches atomic.Int64
}

type testJWK struct {
	kid, alg string
	pub      any
}

func newJWKSServer(t testing.TB, ks ...testJWK) *jwksServer {
	s := &jwksServer{status: 200}
	s.set(t, ks...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		doc, status, delay := s.doc, s.status, s.delay
		s.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t testing.TB, ks ...testJWK) {
	t.Helper()
	var doc jwkset.JWKSMarshal
	doc.Keys = []jwkset.JWKMarshal{}
	for _, k := range ks {
		jwk, err := jwkset.NewJWKFromKey(k.pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig}})
		if err != nil {
			t.Fatalf("jwk %s: %v", k.kid, err)
		}
		doc.Keys = append(doc.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	s.setRaw(200, b)
}

func (s *jwksServer) setRaw(status int, doc []byte) {
	s.mu.Lock()
	s.doc, s.status = doc, status
	s.mu.Unlock()
}

func startFilter(t testing.TB, cfg string, consumers ...*sdk.Consumer) *filter {
	t.Helper()
	f := newFilter(t, cfg, consumers...)
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	return f
}

func jwksCfg(url string, extra string) string {
	return `{"jwks_url":"` + url + `/jwks","issuer":"https://idp.test"` + extra + `}`
}

func idpClaims(sub string) map[string]any {
	c := claims("https://idp.test")
	c["sub"] = sub
	return c
}

func TestJWKSVerify(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t,
		testJWK{"rsa-1", "RS256", &rsaKey.PublicKey},
		testJWK{"ec-1", "ES256", &ecKey256.PublicKey},
		testJWK{"ed-1", "EdDSA", edPub},
		testJWK{"ps-1", "", &rsaKey2.PublicKey}, // no alg: any RSA algorithm
	)
	svc := consumer("svc-a", []string{"internal"})
	f := newFilter(t, jwksCfg(srv.URL, `,"consumer_claim":"sub","cache_size":0`), svc)
	if n := srv.fetches.Load(); n != 0 {
		t.Fatalf("New fetched the JWKS %d times; it must not do I/O", n)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("Start fetched %d times, want 1", n)
	}

	ok := []struct {
		name, alg string
		key       any
		kid       string
	}{
		{"RS256", "RS256", rsaKey, "rsa-1"},
		{"ES256", "ES256", ecKey256, "ec-1"},
		{"EdDSA", "EdDSA", edKey, "ed-1"},
		{"PS256 with an alg-less key", "PS256", rsaKey2, "ps-1"},
		{"RS512 with an alg-less key", "RS512", rsaKey2, "ps-1"},
	}
	for _, tc := range ok {
		r := run(t, f, bearerHdr(sign(t, tc.alg, tc.key, idpClaims("svc-a"), map[string]any{"kid": tc.kid})))
		plugintest.WantAccepted(t, r)
		if r.Consumer != svc || r.Credential != "svc-a" {
			t.Fatalf("%s: consumer %v credential %q", tc.name, r.Consumer, r.Credential)
		}
	}
	// No kid: every fitting key is tried.
	plugintest.WantAccepted(t, run(t, f, bearerHdr(sign(t, "RS256", rsaKey2, idpClaims("svc-a"), nil))))

	// A subject that is no configured consumer: authenticated, anonymous.
	r := run(t, f, bearerHdr(sign(t, "ES256", ecKey256, idpClaims("user-77"), map[string]any{"kid": "ec-1"})))
	plugintest.WantAccepted(t, r)
	if r.Consumer != nil || r.Credential != "user-77" {
		t.Fatalf("anonymous identity: consumer %v credential %q", r.Consumer, r.Credential)
	}

	refused := []struct {
		name, tok, msg string
	}{
		{"wrong issuer", sign(t, "RS256", rsaKey, claims("https://evil.test"), map[string]any{"kid": "rsa-1"}), "issuer"},
		{"no issuer", sign(t, "RS256", rsaKey, map[string]any{"exp": time.Now().Add(time.Hour).Unix()}, map[string]any{"kid": "rsa-1"}), "issuer"},
		{"key confusion: HS256 with the JWKS RSA key as secret", handSigned(map[string]any{"alg": "HS256", "kid": "rsa-1"}, idpClaims("svc-a"), rsaPubPEM), "algorithm"},
		{"JWK alg pins RS256: PS256 refused", sign(t, "PS256", rsaKey, idpClaims("svc-a"), map[string]any{"kid": "rsa-1"}), "no key"},
		{"ES384 with a P-256 key", sign(t, "ES384", ecKey384, idpClaims("svc-a"), map[string]any{"kid": "ec-1"}), "no key"},
		{"right kid, wrong key", sign(t, "RS256", rsaKey2, idpClaims("svc-a"), map[string]any{"kid": "rsa-1"}), "signature"},
		{"kid not a string", sign(t, "RS256", rsaKey, idpClaims("svc-a"), map[string]any{"kid": 7}), "malformed"},
		{"unknown kid", sign(t, "RS256", rsaKey, idpClaims("svc-a"), map[string]any{"kid": "nope"}), "no key"},
		{"no kid, no fitting key", sign(t, "ES384", ecKey384, idpClaims("svc-a"), nil), "no key"},
		{"jku pointing elsewhere", sign(t, "RS256", rsaKey, idpClaims("svc-a"), map[string]any{"kid": "rsa-1", "jku": srv.URL + "/jwks"}), "must not carry keys"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, run(t, f, bearerHdr(tc.tok)), 401, tc.msg)
		})
	}
}

// TestJWKSRotationOnUnknownKid: a token signed with a key published after
// the last fetch is accepted without a reload, once jwks_min_refresh has
// passed; the removed key stops verifying.
func TestJWKSRotationOnUnknownKid(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, testJWK{"k1", "RS256", &rsaKey.PublicKey})
	tok1 := sign(t, "RS256", rsaKey, idpClaims("u"), map[string]any{"kid": "k1"})
	tok2 := sign(t, "RS256", rsaKey2, idpClaims("u"), map[string]any{"kid": "k2"})
	started := time.Now()
	f := startFilter(t, jwksCfg(srv.URL, `,"jwks_refresh":"1h","jwks_min_refresh":"1s","cache_size":0`))
	plugintest.WantAccepted(t, run(t, f, bearerHdr(tok1)))

	srv.set(t, testJWK{"k2", "RS256", &rsaKey2.PublicKey})
	// Within jwks_min_refresh of the last fetch the new kid is refused
	// without a fetch (rate limit)...
	r := run(t, f, bearerHdr(tok2))
	if time.Since(started) < 900*time.Millisecond { // else the machine was too slow to tell
		wantRefused(t, r, 401, "no key")
		if n := srv.fetches.Load(); n != 1 {
			t.Fatalf("fetches %d, want 1", n)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	// ...after it, the unknown kid triggers one fetch and is accepted.
	before := srv.fetches.Load()
	plugintest.WantAccepted(t, run(t, f, bearerHdr(tok2)))
	if n := srv.fetches.Load(); n > before+1 {
		t.Fatalf("fetches %d -> %d, want at most one more", before, n)
	}
	// The whole set was replaced: k1 is gone.
	wantRefused(t, run(t, f, bearerHdr(tok1)), 401, "no key")
}

// TestJWKSPeriodicRefresh: the background refresh picks up a rotation on
// its own.
func TestJWKSPeriodicRefresh(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, testJWK{"k1", "RS256", &rsaKey.PublicKey})
	f := startFilter(t, jwksCfg(srv.URL, `,"jwks_refresh":"1s","jwks_min_refresh":"1s","cache_size":0`))
	srv.set(t, testJWK{"k2", "ES256", &ecKey256.PublicKey})
	deadline := time.Now().Add(5 * time.Second)
	for srv.fetches.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the fetch publish its keys
	n := srv.fetches.Load()
	if n < 2 {
		t.Fatal("no background refresh within 5s")
	}
	plugintest.WantAccepted(t, run(t, f, bearerHdr(sign(t, "ES256", ecKey256, idpClaims("u"), map[string]any{"kid": "k2"}))))
	if got := srv.fetches.Load(); got > n+1 {
		t.Fatalf("accepting a key already fetched caused fetches (%d -> %d)", n, got)
	}
}

// TestJWKSUnknownKidFlood: 200 concurrent requests with random kids cause
// at most one fetch per jwks_min_refresh.
func TestJWKSUnknownKidFlood(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, testJWK{"k1", "RS256", &rsaKey.PublicKey})
	f := startFilter(t, jwksCfg(srv.URL, `,"jwks_refresh":"1h","jwks_min_refresh":"1s"`))
	flood := func() {
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b [8]byte
				_, _ = rand.Read(b[:])
				r := run(t, f, bearerHdr(sign(t, "RS256", rsaKey, idpClaims("u"), map[string]any{"kid": hex.EncodeToString(b[:])})))
				if r.Code != 401 {
					t.Errorf("random kid answered %d", r.Code)
				}
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	flood() // within min_refresh of Start's fetch: no fetch at all
	if n := srv.fetches.Load(); n != 1 && time.Since(start) < time.Second {
		t.Fatalf("flood right after start: %d fetches, want 1", n)
	}
	time.Sleep(time.Second)
	flood()
	flood()
	elapsed := time.Since(start)
	max := int64(1 + elapsed/time.Second + 1)
	if n := srv.fetches.Load(); n > max || n < 2 {
		t.Fatalf("600 unknown kids over %s caused %d fetches, want 2..%d", elapsed, n, max)
	}
}

// TestJWKSUnavailable: while no JWKS was ever loaded the answer is 503; a
// garbage or failing refresh keeps the keys already loaded.
func TestJWKSUnavailable(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t)
	srv.setRaw(500, []byte("oops"))
	f := startFilter(t, jwksCfg(srv.URL, `,"jwks_refresh":"1h","jwks_min_refresh":"1s","cache_size":0`))
	tok := sign(t, "RS256", rsaKey, idpClaims("u"), map[string]any{"kid": "k1"})
	r := run(t, f, bearerHdr(tok))
	wantRefused(t, r, 503, "token keys unavailable")
	if r.Challenge != "" {
		t.Fatalf("a 503 carries no Bearer challenge, got %q", r.Challenge)
	}

	srv.set(t, testJWK{"k1", "RS256", &rsaKey.PublicKey})
	time.Sleep(1100 * time.Millisecond)
	plugintest.WantAccepted(t, run(t, f, bearerHdr(tok)))

	for _, bad := range []struct {
		status int
		doc    string
	}{{200, "not json"}, {200, `{"nokeys":[]}`}, {404, `{"keys":[]}`}, {200, `{"keys":`}} {
		srv.setRaw(bad.status, []byte(bad.doc))
		if err := f.jwks.fetch(); err == nil {
			t.Fatalf("fetch of %d %q succeeded", bad.status, bad.doc)
		}
		plugintest.WantAccepted(t, run(t, f, bearerHdr(tok)))
	}
}

// TestJWKSSlow: a key server slower than jwks_timeout costs a request at
// most about jwks_timeout.
func TestJWKSSlow(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, testJWK{"k1", "RS256", &rsaKey.PublicKey})
	srv.mu.Lock()
	srv.delay = 1500 * time.Millisecond
	srv.mu.Unlock()
	f := newFilter(t, jwksCfg(srv.URL, `,"jwks_timeout":"200ms","jwks_min_refresh":"1s"`))
	start := time.Now()
	_ = f.Start()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Start blocked %s with jwks_timeout 200ms", d)
	}
	start = time.Now()
	r := run(t, f, bearerHdr(sign(t, "RS256", rsaKey, idpClaims("u"), map[string]any{"kid": "k1"})))
	if r.Code != 503 || time.Since(start) > time.Second {
		t.Fatalf("got %d after %s", r.Code, time.Since(start))
	}
}

func TestJWKSParse(t *testing.T) {
	keys(t)
	good, _ := jwkset.NewJWKFromKey(&rsaKey.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "a"}})
	enc, _ := jwkset.NewJWKFromKey(&rsaKey.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "enc", USE: jwkset.UseEnc}})
	gm, _ := json.Marshal(good.Marshal())
	em, _ := json.Marshal(enc.Marshal())
	cases := []struct {
		doc   string
		keys  int
		error bool
	}{
		{`{"keys":[]}`, 0, false},
		{`{"keys":[` + string(gm) + `]}`, 1, false},
		{`{"keys":[` + string(gm) + `,` + string(em) + `]}`, 1, false},                           // encryption key skipped
		{`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0"},` + string(gm) + `]}`, 1, false}, // symmetric key skipped
		{`{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}`, 0, false},                               // broken key skipped
		{`{"keys":[1,2]}`, 0, false},
		{`{}`, 0, true},
		{`[]`, 0, true},
		{`nope`, 0, true},
	}
	for _, tc := range cases {
		ks, err := parseJWKS([]byte(tc.doc))
		if (err != nil) != tc.error {
			t.Fatalf("%s: error %v", tc.doc, err)
		}
		if err == nil && len(ks.all) != tc.keys {
			t.Fatalf("%s: %d keys, want %d", tc.doc, len(ks.all), tc.keys)
		}
	}
}

// TestJWKSCloseStopsGoroutines: Close ends the refresher and any fetch.
func TestJWKSCloseStopsGoroutines(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, testJWK{"k1", "RS256", &rsaKey.PublicKey})
	ignore := goleak.IgnoreCurrent()
	b := &sdk.Build{Route: "leak"}
	flt, err := New(b, []byte(jwksCfg(srv.URL, `,"jwks_refresh":"1s","jwks_min_refresh":"1s"`)))
	if err != nil {
		t.Fatal(err)
	}
	f := flt.(*filter)
	_ = f.Start()
	plugintest.WantAccepted(t, run(t, f, bearerHdr(sign(t, "RS256", rsaKey, idpClaims("u"), map[string]any{"kid": "k1"}))))
	_ = f.Close()
	_ = f.Close() // idempotent
	srv.CloseClientConnections()
	goleak.VerifyNone(t, ignore)
}
