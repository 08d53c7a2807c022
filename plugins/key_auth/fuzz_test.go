package keyauth

import (
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// FuzzOnRequest feeds arbitrary key headers and query strings. A request is
// let through exactly when the key the plugin reads (header first, then the
// query parameter, decoded) is a configured key, and then as its consumer;
// otherwise it gets one of the two fixed 401s. With hide_credentials, no key
// is left in the request that continues.
func FuzzOnRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"alice-key-1", ""}, {"", "apikey=bob-key"}, {"wrong", "apikey=bob-key"},
		{"", "api%6Bey=alice-key-2&x=1"}, {"", "apikey=bob%2Dkey"}, {"bob-key\x00", ""}, {"", "apikey=%zz&apikey=bob-key"},
	} {
		f.Add(s[0], s[1])
	}
	want := map[string]string{"alice-key-1": "alice", "alice-key-2": "alice", "bob-key": "bob"}
	plain := mustNew(f, "fuzz", ``)
	hide := mustNew(f, "fuzz", `{"hide_credentials":true}`)
	f.Fuzz(func(t *testing.T, header, query string) {
		for _, flt := range []*filter{plain, hide} {
			var rc fasthttp.RequestCtx
			rc.Request.SetRequestURI("/x")
			rc.Request.URI().SetQueryString(query)
			if header != "" {
				rc.Request.Header.Set("X-API-Key", header)
			}
			presented := string(rc.Request.Header.Peek("X-API-Key"))
			if presented == "" {
				presented = string(rc.Request.URI().QueryArgs().Peek("apikey"))
			}
			c := sdk.AcquireCtx(&rc)
			st, err := flt.OnRequest(c)
			if err != nil {
				t.Fatal(err)
			}
			name, known := want[presented]
			switch {
			case known:
				if st != sdk.Continue || c.Consumer() == nil || c.Consumer().Name != name {
					t.Fatalf("key %q: got %v %v, want consumer %s", presented, st, c.Consumer(), name)
				}
			case st != sdk.Stop || rc.Response.StatusCode() != 401:
				t.Fatalf("key %q: got %v %d, want 401", presented, st, rc.Response.StatusCode())
			case c.Consumer() != nil:
				t.Fatalf("key %q: refused but consumer %s set", presented, c.Consumer().Name)
			}
			if flt.hide && st == sdk.Continue {
				if len(rc.Request.Header.Peek("X-API-Key")) != 0 || rc.Request.URI().QueryArgs().Has("apikey") {
					t.Fatalf("key left in the request: %q", rc.Request.RequestURI())
				}
			}
			sdk.ReleaseCtx(c)
		}
	})
}
