package mtlsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

// consumer builds a consumer whose mtls_auth credentials are the given
// JSON objects.
func consumer(name string, creds ...string) *sdk.Consumer {
	c := &sdk.Consumer{Name: name, Credentials: sdk.Credentials{}}
	if len(creds) > 0 {
		l := sdk.CredentialList{Plugin: "mtls_auth"}
		for _, cr := range creds {
			l.List = append(l.List, json.RawMessage(cr))
		}
		c.Credentials = sdk.Credentials{l}
	}
	return c
}

// newCert makes a self-signed certificate; the plugin trusts whatever the
// listener verified, so its issuer does not matter here.
func newCert(t testing.TB, cn string, dns []string, uris ...string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"weir"}},
		DNSNames:     dns,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// tlsConn is a connection fasthttp takes for a TLS one: its state holds
// cert as the verified leaf, as the TLS listener leaves it.
type tlsConn struct {
	net.Conn
	state tls.ConnectionState
}

func (c *tlsConn) Handshake() error                     { return nil }
func (c *tlsConn) ConnectionState() tls.ConnectionState { return c.state }
func (c *tlsConn) RemoteAddr() net.Addr                 { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (c *tlsConn) LocalAddr() net.Addr                  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443} }

// request builds the context of a request on a TLS connection whose
// client presented cert (nil: none), or on a cleartext one when tlsOn is
// false.
func request(cert *x509.Certificate, tlsOn bool) (*fasthttp.RequestCtx, *sdk.Ctx) {
	rc := new(fasthttp.RequestCtx)
	if tlsOn {
		conn := &tlsConn{}
		if cert != nil {
			conn.state.PeerCertificates = []*x509.Certificate{cert}
			conn.state.VerifiedChains = [][]*x509.Certificate{{cert}}
		}
		rc.Init2(conn, nil, false)
	} else {
		rc.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	}
	rc.Request.SetRequestURI("/api")
	c := sdk.AcquireCtx(rc)
	c.SetPath([]byte("/api"))
	return rc, c
}

type fixture struct {
	alice, bob, carol, dave, stranger *x509.Certificate
	consumers                         *sdk.Consumers
}

func newFixture(t testing.TB) *fixture {
	fx := &fixture{
		alice:    newCert(t, "alice", nil),
		bob:      newCert(t, "bob-laptop", []string{"x.example"}),
		carol:    newCert(t, "carol-box", []string{"Carol.Example.COM"}),
		dave:     newCert(t, "", nil, "spiffe://weir.test/ns/prod/sa/dave"),
		stranger: newCert(t, "stranger", []string{"s.example"}, "spiffe://weir.test/ns/prod/sa/eve"),
	}
	fp := strings.ToUpper(fingerprint(fx.bob))
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, fp[i:i+2])
	}
	fx.consumers = sdk.NewConsumers([]*sdk.Consumer{
		consumer("alice", `{"subject":"alice"}`),
		// bob's fingerprint as openssl prints it; his subject is also
		// claimed by mallory, which the match order decides between.
		consumer("bob", `{"fingerprint":"`+strings.Join(colons, ":")+`","id":"bob-laptop"}`),
		consumer("mallory", `{"subject":"bob-laptop"}`),
		consumer("carol", `{"san":"carol.example.com"}`),
		consumer("dave", `{"san":"spiffe://weir.test/ns/prod/sa/dave"}`),
	})
	return fx
}

func mustNew(t testing.TB, fx *fixture, cfg string) *filter {
	t.Helper()
	return plugintest.New[*filter](t, New, &sdk.Build{Route: "r", Consumers: fx.consumers}, cfg)
}

func TestRegistered(t *testing.T) { plugintest.WantRegistered(t, "mtls_auth") }

func TestConfig(t *testing.T) {
	fx := newFixture(t)
	with := func(cs ...*sdk.Consumer) *sdk.Build {
		return &sdk.Build{Route: "r", Consumers: sdk.NewConsumers(cs)}
	}
	fp := fingerprint(fx.alice)
	plugintest.Configs(t, New, &sdk.Build{Route: "r", Consumers: fx.consumers}, []plugintest.ConfigCase{
		{Name: "defaults", Cfg: ``},
		{Name: "match and required", Cfg: `{"match":["fingerprint","san"],"required":false}`},
		{Name: "no consumers", Build: &sdk.Build{}, Cfg: `{}`},
		{Name: "unknown key", Cfg: `{"hide_credentials":true}`, Err: `unknown field "hide_credentials"`},
		{Name: "empty match", Cfg: `{"match":[]}`, Err: "match: empty; list at least one of subject, san, fingerprint"},
		{Name: "bad match", Cfg: `{"match":["subject","cn","subject"]}`,
			Err: `match[1]: "cn" is not one of subject, san, fingerprint` + "\n" + `match[2]: "subject" is also match[0]; keep one`},
		{Name: "lower-case fingerprint", Build: with(consumer("a", `{"fingerprint":"`+fp+`"}`))},
		{Name: "not an object", Build: with(consumer("a", `"alice"`)),
			Err: `consumer "a": mtls_auth[0]: a credential is an object like {subject: "..."} or {fingerprint: "..."}`},
		{Name: "unknown credential field", Build: with(consumer("a", `{"cn":"alice"}`)), Err: `consumer "a": mtls_auth[0]: unknown field "cn"`},
		{Name: "empty credential", Build: with(consumer("a", `{"id":"x"}`)), Err: `consumer "a": mtls_auth[0]: set subject, san or fingerprint`},
		{Name: "short fingerprint", Build: with(consumer("a", `{"fingerprint":"`+fp[:62]+`"}`)),
			Err: `consumer "a": mtls_auth[0]: fingerprint "` + fp[:62] + `" is not a SHA-256 fingerprint: give 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)`},
		{Name: "non-hex fingerprint", Build: with(consumer("a", `{"fingerprint":"`+fp[:63]+`g"}`)),
			Err: `consumer "a": mtls_auth[0]: fingerprint "` + fp[:63] + `g" is not a SHA-256 fingerprint: give 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)`},
		{Name: "DN subject", Build: with(consumer("a", `{"subject":"cn=alice"}`)),
			Err: `consumer "a": mtls_auth[0]: subject "cn=alice": give the common name alone, e.g. "alice"`},
		{Name: "bad san", Build: with(consumer("a", `{"san":"a b"}`), consumer("b", `{"san":"://x"}`)),
			Err: `consumer "a": mtls_auth[0]: san "a b" is neither a DNS name nor an absolute URI` + "\n" +
				`consumer "b": mtls_auth[0]: san "://x" is neither a DNS name nor an absolute URI`},
		{Name: "shared subject", Build: with(consumer("a", `{"subject":"svc"}`), consumer("b", `{"subject":"svc"}`)),
			Err: `consumers "a" and "b" share the client certificate subject "svc"; each must identify one consumer`},
		{Name: "shared fingerprint in two spellings", Build: with(consumer("a", `{"fingerprint":"`+fp+`"}`), consumer("b", `{"fingerprint":"`+strings.ToUpper(fp)+`"}`)),
			Err: `consumers "a" and "b" share the client certificate fingerprint "` + fp + `"; each must identify one consumer`},
		{Name: "shared DNS name in two cases", Build: with(consumer("a", `{"san":"X.example"}`), consumer("b", `{"san":"x.EXAMPLE"}`)),
			Err: `consumers "a" and "b" share the client certificate san "x.example"; each must identify one consumer`},
		{Name: "repeated", Build: with(consumer("a", `{"subject":"svc"}`, `{"subject":"svc","id":"two"}`)),
			Err: `consumer "a": mtls_auth[1] repeats the subject of mtls_auth[0]; remove one`},
		{Name: "shared id", Build: with(consumer("a", `{"subject":"x","id":"k"}`), consumer("b", `{"subject":"y","id":"k"}`)),
			Err: `consumer "b": mtls_auth[0]: id "k" is already used by consumer "a"; ids must be unique`},
	})
}

func TestParseFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	h := hex.EncodeToString(sum[:])
	var pairs []string
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	colons := strings.Join(pairs, ":")
	for s, ok := range map[string]bool{
		h: true, strings.ToUpper(h): true, colons: true, strings.ToUpper(colons): true,
		h[:62]: false, h + "00": false, "": false, colons[:len(colons)-1] + ":": false,
		// Colons anywhere but between bytes.
		":" + h[:63]: false, h[:3] + ":" + h[3:] + strings.Repeat(":", 30): false,
	} {
		fp, got := parseFingerprint(s)
		if got != ok || (ok && fp != sum) {
			t.Errorf("parseFingerprint(%q) = %x %v, want %v", s, fp, got, ok)
		}
	}
}

func TestOnRequest(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		name     string
		cfg      string
		cert     *x509.Certificate
		cleartxt bool
		consumer string // "" with status 0: continues unidentified
		cred     string
		status   int
		msg      string
	}{
		{name: "subject", cert: fx.alice, consumer: "alice", cred: "alice#0"},
		// bob's certificate matches mallory by subject and bob by
		// fingerprint: the configured order decides.
		{name: "subject first", cert: fx.bob, consumer: "mallory", cred: "mallory#0"},
		{name: "fingerprint first", cfg: `{"match":["fingerprint","subject"]}`, cert: fx.bob, consumer: "bob", cred: "bob-laptop"},
		{name: "DNS SAN, any case", cert: fx.carol, consumer: "carol", cred: "carol#0"},
		{name: "URI SAN", cert: fx.dave, consumer: "dave", cred: "dave#0"},
		{name: "part not matched", cfg: `{"match":["fingerprint"]}`, cert: fx.alice, status: 401, msg: "unknown client certificate"},
		{name: "unknown", cert: fx.stranger, status: 401, msg: "unknown client certificate"},
		{name: "none", status: 401, msg: "missing client certificate"},
		{name: "cleartext", cleartxt: true, status: 401, msg: "missing client certificate"},
		{name: "none, not required", cfg: `{"required":false}`},
		{name: "cleartext, not required", cfg: `{"required":false}`, cleartxt: true},
		{name: "unknown, not required", cfg: `{"required":false}`, cert: fx.stranger, status: 401, msg: "unknown client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustNew(t, fx, tc.cfg)
			rc, c := request(tc.cert, !tc.cleartxt)
			defer sdk.ReleaseCtx(c)
			st, err := f.OnRequest(c)
			if err != nil {
				t.Fatal(err)
			}
			if tc.status != 0 {
				body := string(rc.Response.Body())
				if st != sdk.Stop || rc.Response.StatusCode() != tc.status || !strings.Contains(body, tc.msg) {
					t.Fatalf("got %v %d %s, want %d %q", st, rc.Response.StatusCode(), body, tc.status, tc.msg)
				}
				if c.Consumer() != nil {
					t.Fatalf("refused but consumer %s set", c.Consumer().Name)
				}
				c.ApplyResponseHeaders()
				if got := string(rc.Response.Header.Peek("WWW-Authenticate")); got != string(challenge) {
					t.Fatalf("WWW-Authenticate %q", got)
				}
				return
			}
			if st != sdk.Continue {
				t.Fatalf("status %v (%d %s), want Continue", st, rc.Response.StatusCode(), rc.Response.Body())
			}
			switch got := c.Consumer(); {
			case tc.consumer == "" && got != nil:
				t.Fatalf("consumer %s, want none", got.Name)
			case tc.consumer != "" && (got == nil || got.Name != tc.consumer || c.Credential() != tc.cred):
				t.Fatalf("consumer %v credential %q, want %s %q", got, c.Credential(), tc.consumer, tc.cred)
			}
		})
	}
}

// TestOnRequestAllocs: finding the consumer allocates nothing, whichever
// part of the certificate matches; a whole request costs only what
// reading the connection's TLS state costs (sdk.Ctx.ClientCertificate
// copies it), and a refusal only what sdk.Ctx.Fail adds to that.
func TestOnRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	fx := newFixture(t)
	f := mustNew(t, fx, `{"match":["subject","san","fingerprint"]}`)
	fpFirst := mustNew(t, fx, `{"match":["fingerprint","san","subject"]}`)
	for name, tc := range map[string]struct {
		f    *filter
		cert *x509.Certificate
	}{
		"subject": {f, fx.alice}, "DNS SAN": {f, fx.carol}, "URI SAN": {f, fx.dave},
		"fingerprint": {fpFirst, fx.bob}, "unknown": {f, fx.stranger},
	} {
		if a := testing.AllocsPerRun(200, func() { tc.f.lookup(tc.f.idx, tc.cert) }); a != 0 {
			t.Errorf("lookup by %s: %.1f allocations", name, a)
		}
	}
	for name, tc := range map[string]struct {
		cert *x509.Certificate
		want sdk.Status
	}{"mapped": {fx.alice, sdk.Continue}, "unknown": {fx.stranger, sdk.Stop}} {
		t.Run(name, func(t *testing.T) {
			rc, c := request(tc.cert, true)
			sdk.ReleaseCtx(c)
			// Each run is a new request: a fresh Ctx from the pool, as on
			// a reused connection.
			once := func() {
				c := sdk.AcquireCtx(rc)
				if st, _ := f.OnRequest(c); st != tc.want {
					t.Fatalf("status %v, want %v", st, tc.want)
				}
				sdk.ReleaseCtx(c)
			}
			base := func() {
				c := sdk.AcquireCtx(rc)
				_ = c.ClientCertificate()
				if tc.want == sdk.Stop {
					c.Fail(401, "unknown client certificate")
				}
				sdk.ReleaseCtx(c)
			}
			plugintest.AllocsAtMost(t, once, base)
		})
	}
}

func BenchmarkOnRequest(b *testing.B) {
	fx := newFixture(b)
	for _, bc := range []struct {
		name, cfg string
		cert      *x509.Certificate
	}{
		{"subject", ``, fx.alice},
		{"DNS SAN", ``, fx.carol},
		{"URI SAN", ``, fx.dave},
		{"fingerprint", `{"match":["fingerprint"]}`, fx.bob},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := mustNew(b, fx, bc.cfg)
			_, c := request(bc.cert, true)
			defer sdk.ReleaseCtx(c)
			b.ReportAllocs()
			for b.Loop() {
				if st, _ := f.OnRequest(c); st != sdk.Continue {
					b.Fatalf("status %v", st)
				}
			}
		})
	}
}
