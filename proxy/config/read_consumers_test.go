package config

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeConsumersAsJSON: the consumers decoded from the tree are what
// encoding/json decodes from the tree's JSON, the one decoding path of the
// rest of the config, for consumers written in every way the schema
// check lets through, refused values (left out) included.
func TestDecodeConsumersAsJSON(t *testing.T) {
	docs := []string{
		`consumers: []`,
		`consumers: [{name: a}, null, {name: b, groups: [x, y], credentials: {key_auth: [{key: k}, {key: k2, id: i}], jwt: null, hmac: []}}]`,
		`consumers: [{name: a, groups: null, credentials: null}]`,
		`consumers: [{name: a, credentials: {key_auth: [null, "s", 1, {key: "é\n<&>"}]}}]`,
		// Refused by the schema: a wrong type, an unknown key.
		`consumers: [{name: 1}, {name: a, groups: x}, {name: b, groups: [x, [y]]}, {name: c, nick: d}, 7, {name: d, credentials: [1]}, {name: e, credentials: {k: 1}}]`,
		`{"consumers": [{"name": "a", "credentials": {"key_auth": [{"key": "k", "x": [1, 2.5, true]}]}}]}`,
	}
	for _, doc := range docs {
		file := "c.yaml"
		if doc[0] == '{' {
			file = "c.json"
		}
		e := &errs{file: file}
		root := readTree(file, []byte(doc), e)
		if root == nil {
			t.Fatalf("%s: %v", doc, e.err())
		}
		(&walker{e: e}).walk(root, configType)
		n := root.items[0]
		var want []Consumer
		if err := json.Unmarshal(n.appendJSON(nil), &want); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if got := decodeConsumers(n); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", doc, got, want)
		}
	}
}

// TestRawArenaValuesApart: credentials carved from one chunk do not
// write over each other when appended to, and a value larger than a
// chunk is whole.
func TestRawArenaValuesApart(t *testing.T) {
	var a rawArena
	x := a.json(&node{kind: kString, str: "x"})
	y := a.json(&node{kind: kString, str: "y"})
	_ = append(x, '!')
	if string(y) != `"y"` {
		t.Fatalf("appending to one value changed the next: %s", y)
	}
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = 'b'
	}
	z := a.json(&node{kind: kString, str: string(big)})
	if len(z) != len(big)+2 || string(y) != `"y"` || string(a.json(&node{kind: kNull})) != "null" {
		t.Fatal("a value larger than a chunk is not kept whole")
	}
}
