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

func TestHeaderToken(t *testing.T) {
	cases := []struct {
		name, header, value string
		want                string
	}{
		{"authorization needs the scheme", "Authorization", "abc", ""},
		{"authorization bearer", "Authorization", "Bearer abc", "abc"},
		{"any case of authorization", "authorization", "abc", ""},
		{"other header bare", "X-Token", "abc", "abc"},
		{"other header with scheme", "X-Token", "bearer abc", "abc"},
		{"absent", "X-Other", "", ""},
		{"no header configured", "", "Bearer abc", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rh fasthttp.RequestHeader
			if tc.value != "" {
				rh.Set("Authorization", tc.value)
				rh.Set("X-Token", tc.value)
			}
			h := NewHeader(tc.header)
			if h.Name() != tc.header {
				t.Fatalf("Name() = %q", h.Name())
			}
			if got := string(h.Token(&rh)); got != tc.want {
				t.Fatalf("Token = %q, want %q", got, tc.want)
			}
		})
	}
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

func TestHeaderTokenZeroAllocs(t *testing.T) {
	var rh fasthttp.RequestHeader
	rh.Set("Authorization", "Bearer abc.def.ghi")
	h := NewHeader("Authorization")
	var tok []byte
	if n := testing.AllocsPerRun(200, func() { tok = h.Token(&rh) }); n != 0 {
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
