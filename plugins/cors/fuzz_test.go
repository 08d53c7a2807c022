package cors

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// fuzzOrigins and their model, written independently with regular
// expressions (case-insensitive, like the matcher).
var (
	fuzzOrigins = `{"origins":["https://app.example.com","https://*.example.org","*.example.net:*","http://[::1]:8080","null"],"credentials":true}`
	modelExact  = regexp.MustCompile(`(?i)^https://app\.example\.com(:0*443)?$`)
	modelOrg    = regexp.MustCompile(`(?i)^https://[a-z0-9._-]+\.example\.org(:0*443)?$`)
	modelNet    = regexp.MustCompile(`(?i)^https?://[a-z0-9._-]+\.example\.net(:([0-9]+))?$`)
	modelV6     = regexp.MustCompile(`(?i)^http://\[::1\]:0*8080$`)
)

func modelAllowed(o string) bool {
	switch {
	case o == "null", modelExact.MatchString(o), modelOrg.MatchString(o), modelV6.MatchString(o):
		// The model's port rule for these: leading zeros, at most 5 digits.
		if i := strings.LastIndexByte(o, ':'); i > 5 && !strings.HasSuffix(o, "]") {
			return len(o)-i-1 <= 5
		}
		return true
	case modelNet.MatchString(o):
		m := modelNet.FindStringSubmatch(o)
		if m[1] == "" {
			return true
		}
		n, err := strconv.Atoi(m[2])
		return err == nil && len(m[2]) <= 5 && n > 0 && n <= 65535
	}
	return false
}

// FuzzOrigin checks the matcher against the model and the wire behaviour
// for any Origin: an allowed origin is echoed verbatim with credentials, a
// disallowed one gets no CORS header, and its preflight a 403.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com", "https://APP.example.com:0443", "https://a.example.org", "https://example.org",
		"http://x.example.net:65535", "http://x.example.net:65536", "http://[::1]:8080", "null", "",
		"https://app.example.com/", "https://app.example.com.evil", "https://a.example.org:443x", "\x00", "https://[::1",
	} {
		f.Add(s)
	}
	flt := mustNew(f, "fuzz", fuzzOrigins)
	f.Fuzz(func(t *testing.T, origin string) {
		got := flt.allowed([]byte(origin))
		if want := modelAllowed(origin); got != want {
			t.Fatalf("allowed(%q) = %v, model says %v", origin, got, want)
		}
		for _, method := range []string{"GET", "OPTIONS"} {
			var rc fasthttp.RequestCtx
			rc.Request.Header.SetMethod(method)
			rc.Request.Header.Set("Origin", origin)
			rc.Request.Header.Set("Access-Control-Request-Method", "GET")
			sent := string(rc.Request.Header.Peek("Origin")) // as fasthttp stores it
			c := sdk.AcquireCtx(&rc)
			st, err := flt.OnRequest(c)
			if err != nil {
				t.Fatal(err)
			}
			c.ApplyResponseHeaders()
			acao := string(rc.Response.Header.Peek("Access-Control-Allow-Origin"))
			allowed := sent != "" && flt.allowed([]byte(sent))
			switch {
			case allowed && acao != sent:
				t.Fatalf("%s %q: Access-Control-Allow-Origin = %q, want the origin", method, sent, acao)
			case !allowed && acao != "":
				t.Fatalf("%s %q: disallowed but Access-Control-Allow-Origin = %q", method, sent, acao)
			case method == "OPTIONS" && sent != "" && !allowed && (st != sdk.Stop || rc.Response.StatusCode() != 403):
				t.Fatalf("preflight from %q: got %v %d, want 403", sent, st, rc.Response.StatusCode())
			}
			sdk.ReleaseCtx(c)
		}
	})
}
