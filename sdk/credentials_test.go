package sdk

import (
	"encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"
)

// TestCredentialsReadAndWriteAsAMap: Credentials is written as the JSON
// object a map of lists was (keys sorted whatever the order in memory,
// null lists kept, nil as null) by both encoders the gateway uses, read
// back in plugin order, and Of finds each kind.
func TestCredentialsReadAndWriteAsAMap(t *testing.T) {
	c := Credentials{
		{Plugin: "key_auth", List: []json.RawMessage{json.RawMessage(`{"key":"k"}`)}},
		{Plugin: "jwt", List: []json.RawMessage{json.RawMessage(`{"issuer":"i"}`), json.RawMessage(`{"issuer":"j"}`)}},
		{Plugin: "basic"},
	}
	const want = `{"basic":null,"jwt":[{"issuer":"i"},{"issuer":"j"}],"key_auth":[{"key":"k"}]}`
	m := map[string][]json.RawMessage{}
	for _, l := range c {
		m[l.Plugin] = l.List
	}
	fromMap, _ := json.Marshal(m)
	if string(fromMap) != want {
		t.Fatalf("the map this replaces writes %s", fromMap)
	}
	for name, marshal := range map[string]func(any) ([]byte, error){"encoding/json": json.Marshal, "goccy": gojson.Marshal} {
		got, err := marshal(struct {
			C Credentials `json:"c,omitempty"`
			E Credentials `json:"e,omitempty"`
		}{C: c, E: Credentials{}})
		if err != nil || string(got) != `{"c":`+want+`}` {
			t.Fatalf("%s: %s %v", name, got, err)
		}
	}
	if c[0].Plugin != "key_auth" {
		t.Fatal("MarshalJSON sorted its receiver")
	}
	var back Credentials
	if err := json.Unmarshal([]byte(want), &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 3 || back[0].Plugin != "basic" || back[1].Plugin != "jwt" || back[2].Plugin != "key_auth" {
		t.Fatalf("read back as %+v", back)
	}
	if got := back.Of("jwt"); len(got) != 2 || string(got[1]) != `{"issuer":"j"}` {
		t.Fatalf("Of(jwt) = %s", got)
	}
	if back.Of("mtls_auth") != nil || back.Of("basic") != nil {
		t.Fatal("Of of an absent or null kind is not nil")
	}
	if err := json.Unmarshal([]byte(`null`), &back); err != nil || back != nil {
		t.Fatalf("null read as %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"k":1}`), &back); err == nil {
		t.Fatal("a kind that is not a list was read")
	}
	cl := c.Clone()
	cl[1].List[0][2] = 'X'
	if string(c[1].List[0]) != `{"issuer":"i"}` {
		t.Fatal("Clone shares the raw credentials")
	}
}
