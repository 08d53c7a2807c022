package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sameTree reports whether two trees hold the same values, keys and
// order.
func sameTree(a, b *node) bool {
	if a.kind != b.kind || a.str != b.str || a.b != b.b || len(a.items) != len(b.items) || len(a.keys) != len(b.keys) {
		return false
	}
	for i := range a.keys {
		if a.keys[i] != b.keys[i] {
			return false
		}
	}
	for i := range a.items {
		if !sameTree(a.items[i], b.items[i]) {
			return false
		}
	}
	return true
}

// checkFastJSON checks that the fast reader either gives up on data or
// reads exactly what the careful reader reads, and that it never accepts
// what the careful reader refuses.
func checkFastJSON(t *testing.T, data []byte) (accepted bool) {
	t.Helper()
	fast, ok := readJSONFast(data, false)
	e := &errs{file: "x.json"}
	careful := readJSONCareful(data, e)
	if !ok {
		return false
	}
	if careful == nil || len(e.list) > 0 {
		t.Fatalf("the fast reader accepts %q, the careful one refuses it: %v", data, e.err())
	}
	if !sameTree(fast, careful) {
		t.Fatalf("the readers differ on %q:\nfast    %s\ncareful %s", data, fast.appendJSON(nil), careful.appendJSON(nil))
	}
	return true
}

// TestFastJSONSameTree: on valid documents, the golden configs and
// documents chosen for their escapes, numbers and whitespace, the fast
// reader gives the careful reader's tree; on invalid ones (syntax,
// duplicate keys, nesting) it gives up, so that the careful reader
// reports the error with its place.
func TestFastJSONSameTree(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "valid", "*.json"))
	if len(files) == 0 {
		t.Fatal("no golden JSON configs")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !checkFastJSON(t, data) {
			t.Errorf("%s: the fast reader gave up on a valid config", f)
		}
	}
	valid := []string{
		`{}`, `[]`, `null`, ` {"a" : [ 1 , -0.5e+3 , 0 , 1E9, true , false , null ] } `,
		`{"a":"\u00e9\n\"\\\/","b":"é","c":"\ud800","d":"` + "\xff" + `"}`,
		"{\"a\":\r\n\t{\"b\":{}}}", `"x"`, `-0`, `{"k\u0065y":1}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18}`,
	}
	for _, s := range valid {
		if !checkFastJSON(t, []byte(s)) {
			t.Errorf("the fast reader gave up on valid %q", s)
		}
	}
	invalid := []string{
		`{"a":1,"a":2}`, `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18}`,
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":.5}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":1,}`, `[1,]`, `{"a" 1}`, `{a:1}`, `{"a":1} x`, `{"a":1}{}`, `{"a":"x`, `{"a":"\x"}`,
		"{\"a\":\"\x01\"}", `{"a":[1}`, `[`, `{`, `{"a":+1}`,
		strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2),
	}
	for _, s := range invalid {
		if _, ok := readJSONFast([]byte(s), false); ok {
			t.Errorf("the fast reader accepts %q", s)
		}
		e := &errs{file: "x.json"}
		if readJSON([]byte(s), e, false); len(e.list) == 0 {
			t.Errorf("%q: no error reported", s)
		}
	}
}

// FuzzFastJSON: whatever the bytes, the fast reader agrees with the
// careful one or gives up.
func FuzzFastJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,"b",{"c":null}]}`, `{"a":"\u00e9"}`, `[1e5,-0.1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastJSON(t, data)
	})
}
