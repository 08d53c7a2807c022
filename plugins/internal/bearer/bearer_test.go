package bearer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/weirgw/weir/sdk"
)

func TestToken(t *testing.T) {
	cases := []struct {
		in       string
		required bool
		want     string
	}{
		{"Bearer abc", true, "abc"},
		{"bEaReR   abc  ", true, "abc"},
		{"Bearer\tabc", true, "abc"},
		{"Bearerabc", true, ""},
		{"Bearer ", true, ""},
		{"Basic abc", true, ""},
		{"abc", true, ""},
		{"", true, ""},
		{"abc", false, "abc"},
		{"Bearer abc", false, "abc"},
		{" abc\t", false, "abc"},
		{"  ", false, ""},
		{"", false, ""},
	}
	for _, tc := range cases {
		if got := string(Token([]byte(tc.in), tc.required)); got != tc.want {
			t.Errorf("Token(%q, %v) = %q, want %q", tc.in, tc.required, got, tc.want)
		}
	}
}

func TestSources(t *testing.T) {
	cases := []struct {
		name                 string
		header, cookie, qry  string // the instance's sources
		authz, xtok, ck, uri string // what the request carries
		want                 string
		src                  Source
	}{
		{name: "authorization needs the scheme", header: "Authorization", authz: "abc", uri: "/", want: "", src: FromNone},
		{name: "authorization bearer", header: "Authorization", authz: "Bearer abc", uri: "/", want: "abc", src: FromHeader},
		{name: "any case of authorization", header: "authorization", authz: "abc", uri: "/", want: "", src: FromNone},
		{name: "other header bare", header: "X-Token", xtok: "abc", uri: "/", want: "abc", src: FromHeader},
		{name: "other header with scheme", header: "X-Token", xtok: "bearer abc", uri: "/", want: "abc", src: FromHeader},
		{name: "header off", authz: "Bearer abc", uri: "/", want: "", src: FromNone},
		{name: "cookie", header: "Authorization", cookie: "jwt", ck: "jwt=c1", uri: "/", want: "c1", src: FromCookie},
		{name: "header before cookie", header: "Authorization", cookie: "jwt", authz: "Bearer h1", ck: "jwt=c1", uri: "/", want: "h1", src: FromHeader},
		{name: "basic falls through to cookie", header: "Authorization", cookie: "jwt", authz: "Basic x", ck: "jwt=c1", uri: "/", want: "c1", src: FromCookie},
		{name: "query", header: "Authorization", qry: "access_token", uri: "/a?x=1&access_token=q1", want: "q1", src: FromQuery},
		{name: "empty query value", header: "Authorization", qry: "access_token", uri: "/a?access_token=", want: "", src: FromNone},
		{name: "cookie before query", cookie: "jwt", qry: "t", ck: "jwt=c1", uri: "/a?t=q1", want: "c1", src: FromCookie},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req fasthttp.Request
			req.SetRequestURI(tc.uri)
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			if tc.xtok != "" {
				req.Header.Set("X-Token", tc.xtok)
			}
			if tc.ck != "" {
				req.Header.Set("Cookie", tc.ck)
			}
			s := NewSources(tc.header, tc.cookie, tc.qry)
			tok, src := s.Token(&req)
			if string(tok) != tc.want || src != tc.src {
				t.Fatalf("Token = %q from %d, want %q from %d", tok, src, tc.want, tc.src)
			}
		})
	}
}

func TestHide(t *testing.T) {
	s := NewSources("X-Token", "jwt", "t")
	newReq := func() *fasthttp.Request {
		req := new(fasthttp.Request)
		req.SetRequestURI("/a?x=1&t=q1")
		req.Header.Set("X-Token", "h1")
		req.Header.Set("X-Other", "o")
		req.Header.SetCookie("jwt", "c1")
		req.Header.SetCookie("other", "c2")
		return req
	}
	check := func(src Source, hdr, cookie, query bool) {
		t.Helper()
		req := newReq()
		s.Hide(req, src)
		if got := len(req.Header.Peek("X-Token")) > 0; got != hdr {
			t.Errorf("source %d: header kept %v, want %v", src, got, hdr)
		}
		if got := len(req.Header.Cookie("jwt")) > 0; got != cookie {
			t.Errorf("source %d: cookie kept %v, want %v", src, got, cookie)
		}
		if got := req.URI().QueryArgs().Has("t"); got != query {
			t.Errorf("source %d: query kept %v, want %v", src, got, query)
		}
		if string(req.Header.Peek("X-Other")) != "o" || string(req.Header.Cookie("other")) != "c2" || !req.URI().QueryArgs().Has("x") {
			t.Errorf("source %d: removed more than the token: %s", src, req.String())
		}
	}
	check(FromNone, true, true, true)
	check(FromHeader, false, true, true)
	check(FromCookie, true, false, true)
	check(FromQuery, true, true, false)
}

func TestChallenges(t *testing.T) {
	if got, want := Challenge("api"), `Bearer realm="api"`; got != want {
		t.Errorf("Challenge = %s, want %s", got, want)
	}
	if got, want := ErrorChallenge("api", "invalid_token", "token expired"),
		`Bearer realm="api", error="invalid_token", error_description="token expired"`; got != want {
		t.Errorf("ErrorChallenge = %s, want %s", got, want)
	}
	if got, want := InsufficientScopeChallenge("api", "insufficient scope", []string{"read", "write"}),
		`Bearer realm="api", error="insufficient_scope", error_description="insufficient scope", scope="read write"`; got != want {
		t.Errorf("InsufficientScopeChallenge = %s, want %s", got, want)
	}
}

func TestValidRealm(t *testing.T) {
	for realm, ok := range map[string]bool{
		"": true, "weir": true, "my api (v2)": true, "a~z!": true,
		`a"b`: false, `a\b`: false, "a\tb": false, "a\nb": false, "é": false, "a\x7f": false,
	} {
		err := ValidRealm(realm)
		if (err == nil) != ok {
			t.Errorf("ValidRealm(%q) = %v", realm, err)
		}
		if err != nil && err.Error() != "realm must be printable ASCII without quotes or backslashes" {
			t.Errorf("ValidRealm(%q) = %q", realm, err)
		}
	}
}

type testReason uint8

const (
	testMissing testReason = iota
	testBad
	testDown
)

func testFailures(route string) *Failures[testReason] {
	return NewFailures[testReason]("bearer_test", route, []Refusal{
		testMissing: {Label: "missing", Status: 401, Msg: "missing bearer token", Challenge: Challenge("weir")},
		testBad:     {Label: "bad", Status: 401, Msg: "bad token", Challenge: ErrorChallenge("weir", "invalid_token", "bad token")},
		testDown:    {Label: "down", Status: 503, Msg: "try later"},
	})
}

func TestFail(t *testing.T) {
	fs := testFailures(`r"1`)
	cases := []struct {
		r         testReason
		code      int
		msg       string
		challenge string
		counter   string
	}{
		{testMissing, 401, "missing bearer token", `Bearer realm="weir"`,
			`weir_auth_failures_total{plugin="bearer_test",route="r\"1",reason="missing"}`},
		{testBad, 401, "bad token", `Bearer realm="weir", error="invalid_token", error_description="bad token"`,
			`weir_auth_failures_total{plugin="bearer_test",route="r\"1",reason="bad"}`},
		{testDown, 503, "try later", "",
			`weir_auth_failures_total{plugin="bearer_test",route="r\"1",reason="down"}`},
	}
	for _, tc := range cases {
		before := metrics.GetOrCreateCounter(tc.counter).Get()
		var rc fasthttp.RequestCtx
		c := sdk.AcquireCtx(&rc)
		if st := fs.Fail(c, tc.r); st != sdk.Stop {
			t.Fatalf("%s: status %v, want Stop", tc.msg, st)
		}
		// Set at once on the response, and again by the proxy from the
		// deferred headers.
		if got := string(rc.Response.Header.Peek("WWW-Authenticate")); got != tc.challenge {
			t.Errorf("%s: challenge %q, want %q", tc.msg, got, tc.challenge)
		}
		rc.Response.Header.Del("WWW-Authenticate")
		c.ApplyResponseHeaders()
		if got := string(rc.Response.Header.Peek("WWW-Authenticate")); got != tc.challenge {
			t.Errorf("%s: deferred challenge %q, want %q", tc.msg, got, tc.challenge)
		}
		if rc.Response.StatusCode() != tc.code || !strings.Contains(string(rc.Response.Body()), tc.msg) {
			t.Errorf("%s: got %d %s", tc.msg, rc.Response.StatusCode(), rc.Response.Body())
		}
		if got := metrics.GetOrCreateCounter(tc.counter).Get(); got != before+1 {
			t.Errorf("%s: counter %d, want %d", tc.counter, got, before+1)
		}
		sdk.ReleaseCtx(c)
	}
}

func TestFailZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	fs := testFailures("r")
	var rc fasthttp.RequestCtx
	step := func() {
		rc.Response.Reset()
		c := sdk.AcquireCtx(&rc)
		fs.Fail(c, testBad)
		sdk.ReleaseCtx(c)
	}
	step()
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Fatalf("%v allocations per refusal, want 0", n)
	}
}

func TestSourcesZeroAllocs(t *testing.T) {
	var req fasthttp.Request
	req.SetRequestURI("/a?x=1")
	req.Header.Set("Authorization", "Bearer abc.def.ghi")
	s := NewSources("Authorization", "jwt", "access_token")
	var tok []byte
	if n := testing.AllocsPerRun(200, func() { tok, _ = s.Token(&req) }); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
	if string(tok) != "abc.def.ghi" {
		t.Fatalf("token %q", tok)
	}
}

// FuzzToken: Token never panics, returns a trimmed, non-empty view into
// its input, and with the scheme required only accepts values that start
// with it.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer\tx==", "Basic abc", "", "Bearer ", "Bearer", "BEARER  a b ", "\t"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, v string, required bool) {
		tok := Token([]byte(v), required)
		if tok == nil {
			return
		}
		if len(tok) == 0 || bytes.Trim(tok, " \t") == nil || len(bytes.Trim(tok, " \t")) != len(tok) {
			t.Fatalf("Token(%q) = %q: not trimmed", v, tok)
		}
		if !strings.Contains(v, string(tok)) {
			t.Fatalf("Token(%q) = %q: not from the input", v, tok)
		}
		if required && (len(v) < 7 || !strings.EqualFold(v[:6], "bearer") || (v[6] != ' ' && v[6] != '\t')) {
			t.Fatalf("Token(%q, required) = %q without the Bearer scheme", v, tok)
		}
	})
}
