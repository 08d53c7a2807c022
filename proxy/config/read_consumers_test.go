package config

import (
	"encoding/json"
	"reflect"
	"strings"
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
		root := readTree(file, []byte(doc), e, false)
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

// TestRawArenaListsAndNamesApart: one-value lists and names carved from
// the arena do not write over each other when appended to.
func TestRawArenaListsAndNamesApart(t *testing.T) {
	var a rawArena
	l1 := a.one(json.RawMessage(`1`))
	l2 := a.one(json.RawMessage(`2`))
	l1 = append(l1, json.RawMessage(`3`))
	if string(l2[0]) != "2" || len(l1) != 2 || string(l1[0]) != "1" {
		t.Fatalf("appending to one list changed the next: %s %s", l1, l2)
	}
	n1, n2 := a.str([]byte("alice")), a.str([]byte("bob"))
	_ = append(a.bytes([]byte("x")), "yyyy"...)
	if n1 != "alice" || n2 != "bob" || a.str(nil) != "" {
		t.Fatalf("names: %q %q", n1, n2)
	}
}

// TestDirectConsumersAsTree: the JSON reader's direct decoding of the
// consumers list gives the config the tree gives, for consumers written
// the plain way and for those it leaves to the tree (escapes, ${VAR},
// null, unknown or repeated keys), in the same document.
func TestDirectConsumersAsTree(t *testing.T) {
	env := func(k string) (string, bool) { return "v-" + k, true }
	docs := []string{
		`{"consumers": []}`,
		`{"consumers": [{}, {"name": "a", "groups": [], "credentials": {}}, {"name": "b", "groups": ["x", "y"], "credentials": {"key_auth": [{"key": "k1"}, {"key": "k2", "id": "i"}], "jwt": []}}]}`,
		`{"consumers": [{"name": "a", "credentials": {"key_auth": [ { "key" : "k" , "n": [1, 2.5e3, true, null] } ]}}]}`,
		`{"consumers": [{"name": "a\u00e9"}]}`,
		`{"consumers": [{"name": "${USER}", "credentials": {"key_auth": [{"key": "${KEY}"}]}}]}`,
		`{"consumers": [{"name": "a", "credentials": {"key_auth": [{"key": "é"}]}}]}`,
		// Credentials read as written (flatCredential) and their edges,
		// each left to the tree: spaces, escapes, "$", "<", a
		// repeated key, a non-string value, too many members, {}.
		`{"consumers": [{"name": "a", "credentials": {"key_auth": [{"key":"k<&>'x"},{"key":"k2","id":"i"}, {"key":"k3","id":"i","x":"y","z":"w"}]}}]}`,
		`{"consumers": [{"name": "a", "credentials": {"key_auth": [{"key": "k"}, {"key":"k\u0041"}, {"key":"a$b"}, {"k$":"v"}, {"key":"\"q"}, {}]}}]}`,
		`{"consumers": [{"name": "a", "credentials": {"key_auth": [{"key":"k","key":"l"}]}}]}`,
		`{"consumers": [{"name": "a", "credentials": {"key_auth": [{"key":1}, {"key":"k","n":true}, {"a":"1","b":"2","c":"3","d":"4","e":"5"}]}}]}`,
		"{\"consumers\": [{\"name\": \"a\", \"credentials\": {\"key_auth\": [{\"key\":\"tab\there\"}, {\"key\":\"del\x7f\"}]}}]}",
		`{"consumers": [{"name": null}, {"name": "a", "groups": null, "credentials": {"k": null}}]}`,
		`{"consumers": [{"name": "a", "name": "b"}]}`,
		`{"consumers": [{"name": "a", "nick": "b"}]}`,
		`{"consumers": [{"name": "a", "credentials": {"k": [], "k": []}}]}`,
		`{"consumers": [{"name": 1}], "listen": ":80"}`,
		`{"listen": ":80", "consumers": [{"name": "a"}], "routes": []}`,
		// Consumers before a large rest of the document: the list is
		// sized to what it holds, and an empty one stays empty, not null.
		`{"consumers": [], "plugins": [{"name": "cors", "config": {"x": "` + strings.Repeat("y", 4000) + `"}}]}`,
		`{"consumers": [{"name": "a"}], "plugins": [{"name": "cors", "config": {"x": "` + strings.Repeat("y", 4000) + `"}}]}`,
	}
	for _, doc := range docs {
		for _, lookup := range []LookupFunc{nil, env} {
			want, werr := parse("c.json", []byte(doc), lookup, &errs{file: "c.json"}, false, nil)
			e := &errs{file: "c.json"}
			got, root := parse("c.json", []byte(doc), lookup, e, true, nil)
			if (want == nil) != (got == nil) {
				t.Fatalf("%s: direct %v, tree %v", doc, got, werr)
			}
			if want != nil && !reflect.DeepEqual(got.Consumers, want.Consumers) {
				t.Errorf("%s:\ndirect %#v\n  tree %#v", doc, got.Consumers, want.Consumers)
			}
			if got != nil && cap(got.Consumers) > len(got.Consumers)+len(got.Consumers)/4+16 {
				t.Errorf("%.60s: %d consumers hold room for %d", doc, len(got.Consumers), cap(got.Consumers))
			}
			_ = root
		}
	}
	// The plain document does take the direct way.
	root := readTree("c.json", []byte(docs[1]), &errs{}, true)
	if !hasPre(root) {
		t.Fatal("plain consumers were read into the tree")
	}
}

// TestDirectConsumersErrorsInFileOrder: a config whose consumers were
// decoded without their tree still lists the errors of every stage about
// them in file order (it is read again the careful way).
func TestDirectConsumersErrorsInFileOrder(t *testing.T) {
	doc := `{"listen": ":80", "consumers": [{"name": "a", "groups": ["x,y"]}, {"name": "b"}, {"name": "c", "groups": ["p q"]}]}`
	check := func(*Config, bool) error {
		return ErrorList{{File: "c.json", Place: "consumers[1].name", Msg: "a later stage's error"}}
	}
	_, err := Check("c.json", []byte(doc), nil, check)
	list, ok := err.(ErrorList)
	if !ok || len(list) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for i, want := range []string{"consumers[0].groups[0]", "consumers[1].name", "consumers[2].groups[0]"} {
		if list[i].Place != want {
			t.Fatalf("error %d is at %s, want %s:\n%v", i, list[i].Place, want, err)
		}
	}
}
