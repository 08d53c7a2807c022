package oauth2introspection

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

const (
	testClientID     = "gateway id"  // a space: form-encoded per RFC 6749 §2.3.1
	testClientSecret = "s3cr:et/+&=" // reserved characters too
)

// idp is a real RFC 7662 introspection endpoint on loopback. answers maps
// a token to the raw response body (status 200) or to a behaviour:
// "!500", "!slow".
type idp struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]string
	delay   time.Duration
	calls   atomic.Int64
	perTok  sync.Map // token -> *atomic.Int64
	badAuth atomic.Int64
}

func newIDP(t testing.TB) *idp {
	p := &idp{answers: map[string]string{}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	id, secret, ok := r.BasicAuth()
	// RFC 6749 §2.3.1: both parts arrive form-encoded.
	id, err1 := url.QueryUnescape(id)
	secret, err2 := url.QueryUnescape(secret)
	if !ok || err1 != nil || err2 != nil || id != testClientID || secret != testClientSecret {
		p.badAuth.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	n, _ := p.perTok.LoadOrStore(tok, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	p.mu.Lock()
	ans, known := p.answers[tok]
	delay := p.delay
	p.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	switch {
	case !known:
		ans = `{"active":false}`
	case ans == "!500":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"active":true}`)) // a 500 never counts, whatever its body
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(ans))
}

func (p *idp) set(tok string, answer any) {
	b, ok := answer.(string)
	if !ok {
		raw, _ := json.Marshal(answer)
		b = string(raw)
	}
	p.mu.Lock()
	p.answers[tok] = b
	p.mu.Unlock()
}

func (p *idp) callsFor(tok string) int64 {
	n, ok := p.perTok.Load(tok)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func active(sub, scope string, exp time.Time) map[string]any {
	m := map[string]any{"active": true, "sub": sub, "client_id": "app-1", "scope": scope, "token_type": "Bearer"}
	if !exp.IsZero() {
		m["exp"] = exp.Unix()
	}
	return m
}

// cfgFor returns a config for p with extra keys ("" or `,"k":v`).
func cfgFor(p *idp, extra string) string {
	return `{"introspection_url":"` + p.URL + `/introspect","client_id":"` + testClientID +
		`","client_secret":` + jsonStr(testClientSecret) + extra + `}`
}

func jsonStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func newFilter(t testing.TB, b *sdk.Build, cfg string) *filter {
	t.Helper()
	if b == nil {
		b = &sdk.Build{}
	}
	if b.Route == "" {
		b.Route = "test-route"
	}
	if b.Log == nil {
		b.Log = slog.New(slog.DiscardHandler)
	}
	return plugintest.New[*filter](t, New, b, cfg)
}

func consumersOf(list ...*sdk.Consumer) *sdk.Consumers { return sdk.NewConsumers(list) }

func consumer(name string, creds ...string) *sdk.Consumer {
	c := &sdk.Consumer{Name: name, Groups: []string{"g-" + name}, Credentials: sdk.Credentials{}}
	if len(creds) > 0 {
		l := sdk.CredentialList{Plugin: "oauth2_introspection"}
		for _, cr := range creds {
			l.List = append(l.List, json.RawMessage(cr))
		}
		c.Credentials = sdk.Credentials{l}
	}
	return c
}

// apiRequest is a client request for uri with headers, routed as /api.
func apiRequest(uri string, headers map[string]string) plugintest.Request {
	return plugintest.Request{URI: uri, Headers: headers, Path: "/api"}
}

func newCtx(uri string, headers map[string]string) (*fasthttp.RequestCtx, *sdk.Ctx) {
	return plugintest.NewRequestCtx(uri, "/api", headers)
}

func runURI(t testing.TB, f *filter, uri string, headers map[string]string) plugintest.Result {
	t.Helper()
	return plugintest.Run(t, f, apiRequest(uri, headers))
}

func run(t testing.TB, f *filter, tok string) plugintest.Result {
	return runURI(t, f, "http://gw.test/api", map[string]string{"Authorization": "Bearer " + tok})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
