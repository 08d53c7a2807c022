package config

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// memoRoutes is a YAML config of n routes in the block style cutRoutes
// takes; route 0's header value is gen.
func memoRoutes(n, gen int) string {
	var b strings.Builder
	b.WriteString("listen: \":8080\"\nservices:\n  - {name: echo, targets: [{url: \"http://127.0.0.1:9\"}]}\nroutes:\n")
	for i := 0; i < n; i++ {
		v := i
		if i == 0 {
			v = gen
		}
		fmt.Fprintf(&b, "  - name: r%d\n    paths: [\"/r%d/{id}\"]  # a comment\n    service: echo\n    plugins:\n"+
			"      - {name: cors, config: {allow_origins: [\"https://%d.test\"]}}\n\n", i, i, v)
	}
	b.WriteString("plugins: []\n")
	return b.String()
}

// sameAsWhole reads doc through r and as a whole: the same config or the
// same errors.
func sameAsWhole(t *testing.T, r *Reader, file, doc string) {
	t.Helper()
	got, gerr := r.CheckAdjusted(file, []byte(doc), testEnv, nil, nil)
	want, werr := CheckAdjusted(file, []byte(doc), testEnv, nil, nil)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("%s: errors differ\nReader: %v\nwhole:  %v", file, gerr, werr)
	}
	if got == nil || want == nil {
		if got != want {
			t.Fatalf("%s: Reader %v, whole %v", file, got, want)
		}
		return
	}
	// The hashes the Reader kept are those of the routes it gives.
	for i := range got.Routes {
		if g, w := got.RouteHash(i), want.RouteHash(i); g != w {
			t.Fatalf("%s: routes[%d]: the Reader's hash %x, the route's %x", file, i, g[:4], w[:4])
		}
	}
	g, w := *got, *want
	g.facts, w.facts = nil, nil
	if !reflect.DeepEqual(&g, &w) {
		t.Fatalf("%s: configs differ\nReader: %+v\nwhole:  %+v", file, &g, &w)
	}
}

// A Reader gives exactly what a whole read gives, over successive
// versions of a file, and reads again only the routes that changed.
func TestRouteMemoSameConfig(t *testing.T) {
	r := &Reader{}
	sameAsWhole(t, r, "a.yaml", memoRoutes(50, 0))
	if len(r.memo.trees) != 50 {
		t.Fatalf("the memo holds %d routes, want 50: the document was not cut", len(r.memo.trees))
	}
	kept := r.memo.trees["  - name: r7\n    paths: [\"/r7/{id}\"]  # a comment\n    service: echo\n    plugins:\n      - {name: cors, config: {allow_origins: [\"https://7.test\"]}}\n\n"]
	if kept == nil {
		t.Fatal("route 7's text is not a key of the memo")
	}
	first, _ := r.CheckAdjusted("a.yaml", []byte(memoRoutes(50, 0)), testEnv, nil, nil)
	sameAsWhole(t, r, "a.yaml", memoRoutes(50, 1))
	second, _ := r.CheckAdjusted("a.yaml", []byte(memoRoutes(50, 1)), testEnv, nil, nil)
	if &first.Routes[7].Paths[0] != &second.Routes[7].Paths[0] || &first.Routes[0].Paths[0] == &second.Routes[0].Paths[0] {
		t.Fatal("an unchanged route was decoded again, or a changed one was not")
	}
	if !second.knownRoute(7) || second.Clone().knownRoute(7) {
		t.Fatal("the facts do not say which routes came from the memo, or outlive a Clone")
	}
	if len(r.memo.trees) != 50 || r.memo.trees["  - name: r7\n    paths: [\"/r7/{id}\"]  # a comment\n    service: echo\n    plugins:\n      - {name: cors, config: {allow_origins: [\"https://7.test\"]}}\n\n"] != kept {
		t.Fatal("an unchanged route was read again")
	}
	// Versions with errors, then valid again: every error as a whole
	// read has it, and the memo still serves.
	for _, doc := range []string{
		strings.Replace(memoRoutes(50, 2), "name: r3\n", "name: r4\n", 1),                      // a duplicate name
		strings.Replace(memoRoutes(50, 2), "service: echo\n", "service: [echo]\n", 1),          // a schema error
		strings.Replace(memoRoutes(50, 2), "paths: [\"/r9/{id}\"]", "paths: [\"/r9/{id}\"", 1), // a syntax error
		strings.Replace(memoRoutes(50, 2), "  - name: r5\n", "  - name: r5\n\tx: 1\n", 1),      // a tab
		memoRoutes(50, 3),
		strings.Replace(memoRoutes(50, 3), "name: r8\n", "name: ${NAME8}\n", 1),
		strings.Replace(memoRoutes(50, 3), "name: r8\n", "name: ${NAME8}\n", 1),
		memoRoutes(50, 4),
		// Known routes checked against a changed rest: their service
		// is gone, or a route before them takes their name.
		strings.Replace(memoRoutes(50, 4), "{name: echo,", "{name: other,", 1),
		strings.Replace(memoRoutes(50, 4), "name: r0\n", "name: r9\n", 1),
		memoRoutes(50, 4),
	} {
		sameAsWhole(t, r, "a.yaml", doc)
	}
	if len(r.memo.trees) != 50 {
		t.Fatalf("the memo holds %d routes after a valid version, want 50", len(r.memo.trees))
	}
}

// Documents whose routes are written in a way cutRoutes does not take,
// or that tie routes to the rest, read as a whole does.
func TestRouteMemoRefuses(t *testing.T) {
	head := "listen: \":8080\"\nservices:\n  - {name: echo, targets: [{url: \"http://127.0.0.1:9\"}]}\n"
	for _, doc := range []string{
		head + "routes: [{name: a, service: echo}]\n",
		head + "routes:\n- name: a\n  service: echo\n- name: b\n  service: echo\nplugins: []\n",
		head + "routes:\n  - &r {name: a, service: echo}\n  - {<<: *r, name: b}\n",
		head + "x-r: &r {service: echo}\nroutes:\n  - {<<: *r, name: a}\n",
		head + "routes:\n  - name: \"a\n  - b\"\n    service: echo\n",
		head + "routes:\n  - name: 'it''s'\n    service: echo\n  - name: b\n    service: echo\n",
		head + "routes:\n  - name: a\n    service: echo\n  -\n    name: b\n    service: echo\n",
		head + "routes:\n  - name: a\n    service: echo\n    plugins:\n      - name: cors\n        config:\n          x: |\n            - name: b\n  - name: c\n    service: echo\n",
		head + "routes:\n  - name: a\n    service: echo\n  - name: a\n    service: echo\n",
		head + "routes:\n  - name: a\n    service: echo\nroutes:\n  - name: b\n    service: echo\n",
		head + "routes: # the routes\n  - name: a\n    service: echo\n",
		"---\n" + head + "routes:\n  - name: a\n    service: echo\n",
		head + "routes:\n  - name: a\n    service: echo\n...\n",
		head + "routes:\n  - name: a\n    service: echo\n   x: 1\n",
		head + "routes:\n  - name: a\n    service: echo\n  x: 1\n",
		head + "routes:\n  name: a\n",
	} {
		r := &Reader{}
		sameAsWhole(t, r, "b.yaml", doc)
		sameAsWhole(t, r, "b.yaml", doc)
	}
}

// Every golden YAML config reads through a Reader as it reads whole.
func TestRouteMemoGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r := &Reader{}
		sameAsWhole(t, r, file, string(data))
		sameAsWhole(t, r, file, string(data))
	}
}

// FuzzRouteMemo: whatever the document, a Reader that read another
// version first reads it as a whole read does.
func FuzzRouteMemo(f *testing.F) {
	f.Add(memoRoutes(3, 0), memoRoutes(3, 1))
	f.Add(memoRoutes(2, 0), strings.Replace(memoRoutes(2, 0), "r1", "r0", -1))
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*", "*.yaml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(memoRoutes(2, 0), string(data))
		}
	}
	f.Add(memoRoutesJSON(3, 0), memoRoutesJSON(3, 1))
	f.Fuzz(func(t *testing.T, first, doc string) {
		for _, file := range []string{"f.yaml", "f.json"} {
			r := &Reader{}
			_, _ = r.CheckAdjusted(file, []byte(first), testEnv, nil, nil)
			sameAsWhole(t, r, file, doc)
			sameAsWhole(t, r, file, doc)
		}
	})
}

// Random edits of a small config, with the characters that matter to
// cutRoutes and cutJSONRoutes (quotes, dashes, indentation, anchors,
// comments, block scalars, brackets, commas, escapes) put anywhere: read
// through a Reader that read the version before, each reads as a whole
// read does.
func TestRouteMemoMutations(t *testing.T) {
	for _, f := range []struct {
		file string
		gen  func(n, gen int) string
		bits []string
	}{
		{"m.yaml", memoRoutes, []string{"\"", "'", "- ", "  ", "\n", "\n  - ", "&a ", "*a", " #", "|\n", "[", "]", "{", "}", "$", "${X}", "\t", ":", "routes:\n", "---\n", "-"}},
		{"m.json", memoRoutesJSON, []string{"\"", "\\", ",", "[", "]", "{", "}", ":", " ", "\n", `"routes": [`, `"routes"`, "$", "${X}", `\u0065`, "1", "null"}},
	} {
		rng := rand.New(rand.NewPCG(3, 4))
		r := &Reader{}
		prev := f.gen(6, 0)
		for i := 0; i < 400; i++ {
			doc := []byte(prev)
			for k := rng.IntN(3); k >= 0; k-- {
				at := rng.IntN(len(doc) + 1)
				doc = append(doc[:at:at], append([]byte(f.bits[rng.IntN(len(f.bits))]), doc[at:]...)...)
			}
			if rng.IntN(3) == 0 {
				doc = []byte(f.gen(6, i)) // back to a valid version
			}
			sameAsWhole(t, r, f.file, string(doc))
			prev = string(doc)
		}
	}
}

// memoRoutesJSON is memoRoutes in JSON, one route per line.
func memoRoutesJSON(n, gen int) string {
	var b strings.Builder
	b.WriteString(`{"listen": ":8080", "services": [{"name": "echo", "targets": [{"url": "http://127.0.0.1:9"}]}], "routes": [` + "\n")
	for i := 0; i < n; i++ {
		v := i
		if i == 0 {
			v = gen
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `  {"name": "r%d", "paths": ["/r%d/{id}"], "service": "echo", "plugins": [{"name": "cors", "config": {"allow_origins": ["https://%d.test"]}}]}`, i, i, v)
	}
	b.WriteString("\n], \"plugins\": []}\n")
	return b.String()
}

// A JSON file's routes are cut and kept as a YAML file's are, and what
// the Reader gives is what a whole read gives, errors included.
func TestRouteMemoJSON(t *testing.T) {
	r := &Reader{}
	sameAsWhole(t, r, "a.json", memoRoutesJSON(50, 0))
	if len(r.memo.trees) != 50 {
		t.Fatalf("the memo holds %d routes, want 50: the document was not cut", len(r.memo.trees))
	}
	first, _ := r.CheckAdjusted("a.json", []byte(memoRoutesJSON(50, 1)), testEnv, nil, nil)
	second, _ := r.CheckAdjusted("a.json", []byte(memoRoutesJSON(50, 2)), testEnv, nil, nil)
	if &first.Routes[7].Paths[0] != &second.Routes[7].Paths[0] || !second.knownRoute(7) || second.knownRoute(0) {
		t.Fatal("an unchanged route was decoded again, or a changed one was not")
	}
	doc := memoRoutesJSON(50, 3)
	for _, d := range []string{
		strings.Replace(doc, `"name": "r3"`, `"name": "r4"`, 1),                                   // a duplicate name
		strings.Replace(doc, `"service": "echo", "plugins"`, `"service": ["echo"], "plugins"`, 1), // a schema error
		strings.Replace(doc, `["/r9/{id}"]`, `["/r9/{id}"`, 1),                                    // a syntax error
		strings.Replace(doc, "},\n  {\"name\": \"r5\"", "}\n  {\"name\": \"r5\"", 1),              // a missing comma
		strings.Replace(doc, "\n], \"plugins\"", ",\n], \"plugins\"", 1),                          // a trailing comma
		strings.Replace(doc, `"name": "r8"`, `"name": "${NAME8}"`, 1),
		strings.Replace(doc, `"name": "r8"`, `"name": "${NAME8}"`, 1),
		strings.Replace(doc, `"name": "r6"`, `"name": "r6", "consumers": []`, 1),  // an unknown key, read alone
		strings.Replace(doc, `"plugins": []}`, `"plugins": [], "routes": []}`, 1), // two routes keys
		strings.Replace(doc, `"routes": [`, `"rout\u0065s": [`, 1),
		strings.Replace(doc, `"routes": [`, `"routes": [], "x": [`, 1),
		strings.Replace(doc, `"https://12.test"`, strings.Repeat("[", 190)+"1"+strings.Repeat("]", 190), 1), // deep
		strings.Replace(doc, `{"name": "echo",`, `{"name": "other",`, 1),                                    // known routes, service gone
		doc,
		memoRoutesJSON(50, 4),
	} {
		sameAsWhole(t, r, "a.json", d)
	}
	if len(r.memo.trees) != 50 {
		t.Fatalf("the memo holds %d routes after a valid version, want 50", len(r.memo.trees))
	}
}

// cutJSONRoutes takes a document only when each of its pieces reads
// alone as it reads in place.
func TestCutJSONRoutesRefuses(t *testing.T) {
	for _, doc := range []string{
		`[]`,
		`{"routes": {}}`,
		`{"routes": []}`,
		`{"routes": [1,]}`,
		`{"routes": [1 2]}`,
		`{"routes": [1], "routes": [2]}`,
		`{"rou\"tes": [1]}`,
		`{"routes": [1]} x`,
		`{"routes": [1],}`,
		`{"routes": ["a]}`,
		`{"routes": [` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `]}`,
	} {
		if _, _, ok := cutJSONRoutes([]byte(doc)); ok {
			t.Errorf("%s: cut", doc)
		}
	}
	head, items, ok := cutJSONRoutes([]byte(` {"a": {"routes": [3]}, "routes": [ {"x": "]"} , [1,{"y":2}] ], "b": "\"routes\""} `))
	if !ok || string(head) != ` {"a": {"routes": [3]}, "routes": [], "b": "\"routes\""} ` || len(items) != 2 ||
		string(items[0]) != `{"x": "]"}` || string(items[1]) != `[1,{"y":2}]` {
		t.Fatalf("cut %q %q %v", head, items, ok)
	}
}

// The cut of a document made from the cut of the one before it
// (yamlCut.cut with a lastCut) is the cut made from scratch: random
// edits, with the characters that steer the scan, of documents that
// cut and of documents that do not.
func TestCutRoutesFromLast(t *testing.T) {
	bits := []string{"\"", "'", "- ", "  ", "\n", "\n  - ", "\n- ", " #", "|\n", "[", "]", "{", "}", "\t", ":", "routes:\n", "\nroutes:\n", "\nx: 1\n", "---\n", "-", "\n\n"}
	rng := rand.New(rand.NewPCG(5, 6))
	var last *lastCut
	prev := memoRoutes(8, 0)
	cuts := 0
	for i := 0; i < 3000; i++ {
		doc := []byte(prev)
		for k := rng.IntN(3); k >= 0; k-- {
			at := rng.IntN(len(doc) + 1)
			if rng.IntN(4) == 0 && at < len(doc) { // a deletion
				doc = append(doc[:at:at], doc[at+rng.IntN(min(8, len(doc)-at))+1:]...)
				continue
			}
			doc = append(doc[:at:at], append([]byte(bits[rng.IntN(len(bits))]), doc[at:]...)...)
		}
		if rng.IntN(5) == 0 {
			doc = []byte(memoRoutes(rng.IntN(8)+1, i))
		}
		wantHead, wantItems, wantFound := cutRoutes(doc)
		var c yamlCut
		found := c.cut(doc, last)
		if found != wantFound {
			t.Fatalf("edit %d: found %v, from scratch %v\nlast:\n%s\ndoc:\n%s", i, found, wantFound, last.textOrEmpty(), doc)
		}
		if found {
			cuts++
			head, items := c.pieces(doc)
			if !bytes.Equal(head, wantHead) || !reflect.DeepEqual(items, wantItems) {
				t.Fatalf("edit %d: cut %q %q, from scratch %q %q\nlast:\n%s\ndoc:\n%s", i, head, items, wantHead, wantItems, last.textOrEmpty(), doc)
			}
			var sc yamlCut
			sc.cut(doc, nil)
			if !reflect.DeepEqual(sc, c) {
				t.Fatalf("edit %d: state %+v, scratch %+v", i, c, sc)
			}
			last = &lastCut{text: bytes.Clone(doc), c: c}
		}
		if !found && rng.IntN(2) == 0 {
			doc = []byte(prev) // edit on from one that cut, mostly
		}
		prev = string(doc)
	}
	if cuts < 500 {
		t.Fatalf("only %d of 3000 documents cut: the test tries too little", cuts)
	}
}
