package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/weirgw/weir/sdk"
)

const unmaskDoc = `{
  "listen": "127.0.0.1:8080",
  "admin": {"listen": "127.0.0.1:8081", "token": "tok"},
  "redis": {"addrs": ["127.0.0.1:6379"], "password": "redis-pw"},
  "plugins": [
    {"name": "p", "config": {"secret": "first", "nested": [{"password": "deep"}]}},
    {"name": "p", "config": {"secret": "second"}}
  ],
  "routes": [{"name": "r", "paths": ["/"], "service": "s",
    "plugins": [{"name": "oauth2_introspection", "config": {"client_secret": "cs", "key": "not-a-secret"}}]}],
  "consumers": [{"name": "alice", "credentials": {"jwt": [{"issuer": "a", "secret": "s1"}, {"issuer": "b", "secret": "s2"}]}}]
}`

// TestUnmaskRoundTrip: every field Masked masks comes back from the
// stored config when the masked config is written back unchanged.
func TestUnmaskRoundTrip(t *testing.T) {
	stored, err := ParseEnv("c.json", []byte(unmaskDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(stored.Masked())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "redis-pw") || strings.Count(string(out), Mask) != 8 {
		t.Fatalf("masked config:\n%s", out)
	}
	back, err := ParseEnv("back.json", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Unmask(stored, "back.json"); err != nil {
		t.Fatal(err)
	}
	want, _ := Marshal(stored)
	got, _ := Marshal(back)
	if string(got) != string(want) {
		t.Fatalf("unmasked config differs from the stored one:\n%s\nwant:\n%s", got, want)
	}
}

// TestUnmaskRefusesMasksWithNothingToKeep: each mask that no stored
// secret answers is named; a value that is not the mask is taken as
// written.
func TestUnmaskRefusesMasksWithNothingToKeep(t *testing.T) {
	stored, err := ParseEnv("c.json", []byte(unmaskDoc), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := stored.Clone()
	c.Admin.Token = "new-token"
	c.Redis = nil
	c.Plugins = append(c.Plugins, Plugin{Name: "p", Config: json.RawMessage(`{"secret":"******"}`)})
	c.Routes[0].Name = "renamed"
	c.Routes[0].Plugins[0].Config = json.RawMessage(`{"client_secret":"******"}`)
	for i, cl := range c.Consumers[0].Credentials {
		if cl.Plugin == "jwt" {
			c.Consumers[0].Credentials[i].List = cl.List[1:]
			cl.List[1] = json.RawMessage(`{"issuer":"b","secret":"******"}`)
		}
	}
	c.Consumers = append(c.Consumers, Consumer{Name: "bob", Credentials: sdk.CredentialsOf(map[string][]json.RawMessage{
		"key_auth": {json.RawMessage(`{"key":"******"}`)}})})
	got := lines(t, c.Unmask(stored, "w.json"))
	want := []string{
		"w.json: consumers[0].credentials.jwt[0].secret: " + noStoredSecret,
		"w.json: consumers[1].credentials.key_auth[0].key: " + noStoredSecret,
		"w.json: plugins[2].config.secret: " + noStoredSecret,
		"w.json: routes[0].plugins[0].config.client_secret: " + noStoredSecret,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c.Admin.Token != "new-token" {
		t.Fatalf("a new token was replaced: %q", c.Admin.Token)
	}
}

// TestParseItemIsStrict: one object is read like a file.
func TestParseItemIsStrict(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`null`, "b.json: top level: expected a service (a mapping), got null"},
		{` `, "b.json: top level: the body is empty: send the service as a JSON object"},
		{`{"name":"a"} }`, "b.json: line 1, column 14: invalid JSON: invalid character '}' after top-level value"},
		{`{"name":"a","name":"b"}`, `b.json: name: key "name" appears twice in one mapping; keep one`},
		{`{"name":"a","timout":"1s"}`, `b.json: timout: unknown key "timout" (did you mean "timeout"?)`},
	} {
		var s Service
		got := strings.Join(lines(t, ParseItem("b.json", []byte(c.body), &s)), "\n")
		if got != c.want {
			t.Errorf("%q: %q, want %q", c.body, got, c.want)
		}
	}
	var s Service
	if err := ParseItem("b.yaml", []byte("name: a\ntargets: [{url: \"http://h:1\"}]\n"), &s); err != nil || s.Name != "a" || len(s.Targets) != 1 {
		t.Fatalf("YAML service: %v %+v", err, s)
	}
}
