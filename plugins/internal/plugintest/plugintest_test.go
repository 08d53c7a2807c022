package plugintest

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/weirgw/weir/sdk"
)

// echo is a filter for testing the helpers: it refuses a request carrying
// X-Deny, otherwise identifies consumer "c", moves X-In to X-Out and
// records what it saw in X-Seen.
type echo struct{ closed *bool }

func (e echo) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	h := &c.Request().Header
	if v := h.Peek("X-Deny"); len(v) > 0 {
		c.SetResponseHeader("WWW-Authenticate", []byte("Test"))
		return c.Fail(401, "denied "+string(v)), nil
	}
	if len(h.Peek("X-Err")) > 0 {
		return sdk.Continue, errors.New("boom")
	}
	h.Set("X-Seen", fmt.Sprintf("path=%s id=%s ip=%s rid=%s consumer=%v", c.Path(), c.Param("id"),
		c.ClientIP(), c.RequestID(), c.Consumer() != nil))
	if v := h.Peek("X-In"); len(v) > 0 {
		h.Set("X-Out", string(v))
		h.Del("X-In")
	}
	c.SetConsumer(&sdk.Consumer{Name: "c"}, "cred")
	c.AddScope("s")
	return sdk.Continue, nil
}

func (e echo) Close() error { *e.closed = true; return nil }

func newEcho(closed *bool) NewFunc {
	return func(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
		if string(raw) == "bad" {
			return nil, errors.New("bad config")
		}
		return echo{closed: closed}, nil
	}
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as the real one does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs fn with a recorder and returns what it failed with ("" when
// it passed).
func fails(t *testing.T, fn func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r.msg
}

func TestNew(t *testing.T) {
	closed := false
	t.Run("closed at the end", func(t *testing.T) {
		f := New[echo](t, newEcho(&closed), &sdk.Build{}, `{}`)
		if f.closed != &closed || closed {
			t.Fatal("wrong filter, or closed too early")
		}
	})
	if !closed {
		t.Fatal("an sdk.Closer filter was not closed when its test ended")
	}
	if msg := fails(t, func(tb testing.TB) { New[sdk.Filter](tb, newEcho(&closed), nil, "bad") }); msg != "New(bad): bad config" {
		t.Fatalf("refused config: %q", msg)
	}
}

func TestWantErr(t *testing.T) {
	some := errors.New("cache_ttl must be > 0")
	cases := []struct {
		err           error
		want          string
		exact, within string // expected failures ("" passes)
	}{
		{nil, "", "", ""},
		{some, "cache_ttl must be > 0", "", ""},
		{some, "must be > 0", `error
 got "cache_ttl must be > 0"
want "must be > 0"`, ""},
		{some, "", "unexpected error: cache_ttl must be > 0", "unexpected error: cache_ttl must be > 0"},
		{nil, "x", `no error, want "x"`, `want error containing "x", got none`},
		{some, "other", `error
 got "cache_ttl must be > 0"
want "other"`, `want error containing "other", got "cache_ttl must be > 0"`},
	}
	for _, tc := range cases {
		if got := fails(t, func(tb testing.TB) { WantErr(tb, tc.err, tc.want) }); got != tc.exact {
			t.Errorf("WantErr(%v, %q) failed with %q, want %q", tc.err, tc.want, got, tc.exact)
		}
		if got := fails(t, func(tb testing.TB) { WantErrContaining(tb, tc.err, tc.want) }); got != tc.within {
			t.Errorf("WantErrContaining(%v, %q) failed with %q, want %q", tc.err, tc.want, got, tc.within)
		}
	}
}

// registerEcho registers once per process: sdk.Register refuses a name
// twice, and -count=N runs the test again.
var registerEcho = sync.OnceFunc(func() { sdk.Register(sdk.Factory{Name: "plugintest_echo", New: newEcho(new(bool))}) })

func TestWantRegistered(t *testing.T) {
	registerEcho()
	WantRegistered(t, "plugintest_echo")
	if msg := fails(t, func(tb testing.TB) { WantRegistered(tb, "no_such_plugin") }); msg != "no_such_plugin is not registered" {
		t.Fatalf("unregistered: %q", msg)
	}
}

func TestNewCtx(t *testing.T) {
	alice := &sdk.Consumer{Name: "alice"}
	rc, c := NewCtx(Request{
		URI:         "http://gw.test/users/7?a=1",
		Headers:     map[string]string{"X-A": "1"},
		HeaderLines: []string{"X-Forwarded-For", "1.1.1.1", "X-Forwarded-For", "2.2.2.2"},
		Peer:        "10.0.0.9",
		Params:      []string{"id", "7"},
		RequestID:   "req-9",
		Consumer:    alice, Credential: "k", Scopes: []string{"read"},
	})
	defer sdk.ReleaseCtx(c)
	if got := Values(&rc.Request.Header, "X-Forwarded-For"); strings.Join(got, "|") != "1.1.1.1|2.2.2.2" {
		t.Errorf("header lines %q", got)
	}
	if string(rc.Request.Header.Peek("X-A")) != "1" || string(rc.Request.URI().QueryString()) != "a=1" {
		t.Errorf("request %s", rc.Request.String())
	}
	if string(c.Path()) != "/users/7" || string(c.Param("id")) != "7" || string(c.RequestID()) != "req-9" {
		t.Errorf("path %q param %q id %q", c.Path(), c.Param("id"), c.RequestID())
	}
	if c.ClientIP().String() != "10.0.0.9" || c.Consumer() != alice || c.Credential() != "k" || !c.HasScope("read") {
		t.Errorf("client %v consumer %v %q scopes %q", c.ClientIP(), c.Consumer(), c.Credential(), c.Scopes())
	}

	rc, c = NewCtx(Request{Path: "/normalized"})
	defer sdk.ReleaseCtx(c)
	if string(rc.Request.RequestURI()) != "/" || string(c.Path()) != "/normalized" || c.ClientIP().String() != "127.0.0.1" {
		t.Errorf("defaults: uri %q path %q client %v", rc.Request.RequestURI(), c.Path(), c.ClientIP())
	}
}

func TestDoAndRun(t *testing.T) {
	f := echo{closed: new(bool)}
	rc, c, st := Do(t, f, Request{URI: "/x", Headers: map[string]string{"X-In": "v"}})
	if st != sdk.Continue || c.Consumer() == nil || string(rc.Request.Header.Peek("X-Out")) != "v" {
		t.Fatalf("Do: %v %v %s", st, c.Consumer(), rc.Request.String())
	}

	r := Run(t, f, Request{URI: "/x?q=1", Headers: map[string]string{"X-In": "v"}, Params: []string{"id", "3"}})
	WantAccepted(t, r)
	if r.Code != 200 || r.Consumer == nil || r.Credential != "cred" || strings.Join(r.Scopes, ",") != "s" ||
		r.RequestURI != "/x?q=1" || r.RequestHeaders["X-Out"] != "v" || r.RequestHeaders["X-In"] != "" ||
		r.RequestHeaders["X-Seen"] != "path=/x id=3 ip=127.0.0.1 rid= consumer=false" {
		t.Fatalf("Run: %+v", r)
	}

	r = Run(t, f, Request{Headers: map[string]string{"X-Deny": "now"}})
	WantRefused(t, r, 401, "denied now")
	if r.Challenge != "Test" {
		t.Fatalf("deferred header not applied: %q", r.Challenge)
	}
	if msg := fails(t, func(tb testing.TB) { WantAccepted(tb, r) }); !strings.HasPrefix(msg, "want the request accepted, got 401") {
		t.Fatalf("WantAccepted on a refusal: %q", msg)
	}
	if msg := fails(t, func(tb testing.TB) { WantRefused(tb, r, 403, "denied") }); !strings.HasPrefix(msg, `want 403 "denied", got status`) {
		t.Fatalf("WantRefused with the wrong code: %q", msg)
	}
	ok := Run(t, f, Request{})
	if msg := fails(t, func(tb testing.TB) {
		WantRefused(tb, Result{Status: sdk.Stop, Code: 401, Consumer: ok.Consumer}, 401, "")
	}); msg != `refused request identified consumer "c"` {
		t.Fatalf("WantRefused with a consumer: %q", msg)
	}
	if msg := fails(t, func(tb testing.TB) { Run(tb, f, Request{Headers: map[string]string{"X-Err": "1"}}) }); msg != "OnRequest: boom" {
		t.Fatalf("error from OnRequest: %q", msg)
	}
}

func TestAcquire(t *testing.T) {
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/a/b?c=d")
	c := Acquire(&rc, "x", "1", "y", "2")
	defer sdk.ReleaseCtx(c)
	if string(c.Path()) != "/a/b" || string(c.Param("x")) != "1" || string(c.Param("y")) != "2" {
		t.Fatalf("path %q params %v", c.Path(), c.Params())
	}
}

func TestAllocsAtMost(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	var sink []byte
	AllocsAtMost(t, func() {}, nil)
	grow := func() { sink = make([]byte, 64+len(sink)%2) }
	AllocsAtMost(t, grow, grow)
	if msg := fails(t, func(tb testing.TB) { AllocsAtMost(tb, grow, nil) }); msg != "1.0 allocations per run, want at most 0.0" {
		t.Fatalf("allocating step: %q", msg)
	}
}

func TestEditedJSON(t *testing.T) {
	m := EditedJSON(t, []byte(`{"a":1}`), 7, "password")
	if m["a"] != 1.0 {
		t.Fatalf("decoded %v", m)
	}
	for _, tc := range []struct {
		body string
		cl   int
		msg  string
	}{
		{`{"a":1}`, 8, "Content-Length 8 for 7 bytes"},
		{`[1]`, 3, "is not a JSON object"},
		{`{"PassWord":1}`, 14, `kept "PassWord"`},
	} {
		if msg := fails(t, func(tb testing.TB) { EditedJSON(tb, []byte(tc.body), tc.cl, "password") }); !strings.Contains(msg, tc.msg) {
			t.Errorf("EditedJSON(%s, %d) failed with %q, want %q", tc.body, tc.cl, msg, tc.msg)
		}
	}
}

func TestConfigs(t *testing.T) {
	var builds []*sdk.Build
	def, other := &sdk.Build{Route: "def"}, &sdk.Build{Route: "other"}
	newf := func(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
		builds = append(builds, b)
		return newEcho(new(bool))(b, raw)
	}
	Configs(t, newf, def, []ConfigCase{
		{Name: "valid", Cfg: `{}`},
		{Name: "refused", Cfg: "bad", Err: "bad config"},
		{Name: "own build", Build: other, Cfg: `{}`},
	})
	if len(builds) != 3 || builds[0] != def || builds[1] != def || builds[2] != other {
		t.Fatalf("builds %v", builds)
	}
}

func TestWantOnlyCounted(t *testing.T) {
	counts := map[string]uint64{"a": 0, "b": 1, "c": 0}
	count := func(v string) uint64 { return counts[v] }
	WantOnlyCounted(t, count, []string{"a", "b", "c"}, "b")
	errs := 0
	rt := &countingTB{TB: t, errs: &errs}
	WantOnlyCounted(rt, count, []string{"a", "b", "c"}, "a")
	if errs != 2 { // a is 0, not 1; b is 1, not 0
		t.Fatalf("%d errors, want 2", errs)
	}
}

// countingTB counts Errorf calls instead of failing.
type countingTB struct {
	testing.TB
	errs *int
}

func (c *countingTB) Helper()               {}
func (c *countingTB) Errorf(string, ...any) { *c.errs++ }

func TestNewRequestCtx(t *testing.T) {
	rc, c := NewRequestCtx("http://gw.test/a/b?x=1", "/b", map[string]string{"Authorization": "Bearer t"})
	defer sdk.ReleaseCtx(c)
	if string(c.Path()) != "/b" || string(rc.Request.Header.Peek("Authorization")) != "Bearer t" ||
		string(rc.Request.URI().QueryString()) != "x=1" || c.ClientIP().String() != "127.0.0.1" {
		t.Fatalf("path %q request %s client %v", c.Path(), rc.Request.String(), c.ClientIP())
	}
	_, c2 := NewRequestCtx("/p/q", "", nil)
	defer sdk.ReleaseCtx(c2)
	if string(c2.Path()) != "/p/q" {
		t.Fatalf("path from the URI: %q", c2.Path())
	}
	if raceEnabled {
		return
	}
	// A plain request costs what building it costs: the headers map is
	// not moved to the heap on its way in.
	n := testing.AllocsPerRun(100, func() {
		_, c := NewRequestCtx("/x", "/x", map[string]string{"A": "1"})
		sdk.ReleaseCtx(c)
	})
	m := testing.AllocsPerRun(100, func() {
		_, c := NewCtx(Request{URI: "/x", Path: "/x", Headers: map[string]string{"A": "1"}})
		sdk.ReleaseCtx(c)
	})
	if n >= m {
		t.Fatalf("NewRequestCtx allocates %v times, NewCtx %v: the map escaped", n, m)
	}
}

// allocating refuses with a body that grows by one allocation per run
// beyond what c.Fail costs when extra is set.
type allocating struct{ extra bool }

var allocSink []byte

func (a allocating) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	if a.extra {
		allocSink = make([]byte, 64+len(allocSink)%2)
	}
	if len(c.Request().Header.Peek("X-Deny")) > 0 {
		return c.Fail(403, "refused"), nil
	}
	return sdk.Continue, nil
}

func TestWantOnRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	_, ok := NewCtx(Request{})
	defer sdk.ReleaseCtx(ok)
	_, deny := NewCtx(Request{Headers: map[string]string{"X-Deny": "1"}})
	defer sdk.ReleaseCtx(deny)
	WantOnRequestAllocs(t, allocating{}, ok, sdk.Continue, 403)
	WantOnRequestAllocs(t, allocating{}, deny, sdk.Stop, 403)
	if msg := fails(t, func(tb testing.TB) { WantOnRequestAllocs(tb, allocating{extra: true}, ok, sdk.Continue, 403) }); msg == "" {
		t.Fatal("an allocating filter passed")
	}
	if msg := fails(t, func(tb testing.TB) { WantOnRequestAllocs(tb, allocating{}, ok, sdk.Stop, 403) }); msg != "status 0, want 1" {
		t.Fatalf("wrong status: %q", msg)
	}
}
