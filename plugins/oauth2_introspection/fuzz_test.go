package oauth2introspection

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

// FuzzParseResponse: the introspection server's bytes are untrusted. The
// parser must not panic, and may only report active when the body is an
// object whose "active" member is exactly the JSON literal true.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"sub":"u","scope":"a b","exp":1700000000}`, `{"active":false}`, `{"Active":true}`,
		`{"active":true,"active":false}`, `{"active":1}`, `[]`, `{"active":true}{}`, `{"a":{"b":[1,{"c":null}]},"active":true}`,
		"{\"active\":true,\"sub\":\"\\u0000\"}", `{"active":true,"exp":1e999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseResponse(body)
		if err != nil || !r.active {
			return
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(body, &doc) != nil || string(doc["active"]) != "true" {
			t.Fatalf("active from %q", body)
		}
		normalize(r, time.Now(), time.Minute, time.Second)
	})
}

// FuzzRequestToken: whatever the client sends as Authorization or query,
// a request whose token the memory cache does not know as active is
// never let through without asking, and nothing panics. The
// introspection URL is unreachable, so every miss must end in on_error.
func FuzzRequestToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Bearer a b", "bearer\tx==", "Basic abc", "", "Bearer ", "Bearer é"} {
		f.Add(s, "q")
	}
	flt, err := New(&sdk.Build{Route: "fuzz"}, json.RawMessage(`{"introspection_url":"http://127.0.0.1:1/i","query":"t","timeout":"50ms"}`))
	if err != nil {
		f.Fatal(err)
	}
	fl := flt.(*filter)
	fl.log = discardLogger()
	f.Fuzz(func(t *testing.T, auth, query string) {
		rc, c := newCtx("http://gw.test/api", map[string]string{"Authorization": auth})
		defer sdk.ReleaseCtx(c)
		rc.Request.URI().QueryArgs().Set("t", query)
		st, err := fl.OnRequest(c)
		if err != nil || st != sdk.Stop {
			t.Fatalf("status %v err %v for %q / %q", st, err, auth, query)
		}
		if code := rc.Response.StatusCode(); code != 401 && code != 503 {
			t.Fatalf("code %d", code)
		}
	})
}
