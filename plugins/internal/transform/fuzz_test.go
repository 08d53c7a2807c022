package transform

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// fuzzJSONOps is a fixed config that exercises every branch of the
// rewriter: nested create, replace, fold-matched removal, removal below
// an object, and a set whose parent may be a non-object.
var fuzzJSONOps = struct {
	set    map[string]string
	remove []string
}{
	set: map[string]string{
		"meta.source": `"weir"`,
		"meta.n":      `{"x":[1,null]}`,
		"a":           `0`,
		"x.y.z":       `true`,
	},
	remove: []string{"password", "user.token", "b"},
}

// refDecode decodes with the standard library, keeping numbers exact.
func refDecode(b []byte) (any, error) {
	if !stdjson.Valid(b) {
		return nil, errors.New("invalid JSON")
	}
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// refApply is the map-based meaning of a jsonNode tree, the oracle for
// the byte-level rewriter.
func refApply(t *testing.T, m map[string]any, n *jsonNode) {
	for _, ch := range n.children {
		var keys []string
		for k := range m {
			if k == ch.key || ch.fold && strings.EqualFold(k, ch.key) {
				keys = append(keys, k)
			}
		}
		switch {
		case ch.remove:
			for _, k := range keys {
				delete(m, k)
			}
		case ch.value != nil:
			v, err := refDecode(ch.value)
			if err != nil {
				t.Fatal(err)
			}
			m[ch.key] = v
		default:
			if len(keys) == 0 {
				if ch.create != nil {
					v, _ := refDecode(ch.create)
					m[ch.key] = v
				}
				continue
			}
			for _, k := range keys {
				switch sub := m[k].(type) {
				case map[string]any:
					refApply(t, sub, ch)
				case nil:
					if ch.create != nil {
						v, _ := refDecode(ch.create)
						m[k] = v
					}
				}
			}
		}
	}
}

func depth(b []byte) int {
	d, maxd := 0, 0
	inStr := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			d++
			maxd = max(maxd, d)
		case !inStr && (c == '}' || c == ']'):
			d--
		}
	}
	return maxd
}

// FuzzJSONRewrite checks the byte-level rewriter against decoding with
// encoding/json, applying the operations to maps and comparing: the
// rewriter accepts exactly the documents encoding/json accepts (up to
// the depth limit), and its output decodes to the expected value.
func FuzzJSONRewrite(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"password":"p","Password":2,"PASSWORD":{}}`,
		`{"meta":{"v":1},"user":{"token":"t","id":2}}`, `{"meta":null}`, `{"meta":"s"}`,
		`{"x":{"y":null}}`, `{"x":{"y":{"z":1,"w":[1,2,{"a":1}]}}}`,
		`{"pa\u0073sword":1,"b":[1,2]}`, `{"a":1,"a":2}`, `{"meta":{},"meta":null}`,
		`[1,2]`, `"s"`, `1e5`, `{"a":01}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}",
		`{"a" : 1 , "b" : [ ] }`, "{\n \"a\": 1\n}\n", `{"a":}`, `{"a":1,}`, `{`,
		`{"\u00e9":-0.5E+3,"c":true,"d":false,"e":null}`,
	} {
		f.Add([]byte(s))
	}
	jp := mustJSON(f, fuzzJSONOps.set, fuzzJSONOps.remove...)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, res := jp.rewrite(nil, in)
		ref, err := refDecode(in)
		switch res {
		case resInvalid:
			if err == nil && depth(in) <= maxJSONDepth {
				t.Fatalf("rewriter refused valid JSON %q", in)
			}
			return
		case resNotObject:
			if err != nil {
				t.Fatalf("not_object for invalid JSON %q: %v", in, err)
			}
			if _, ok := ref.(map[string]any); ok {
				t.Fatalf("not_object for an object %q", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("rewriter accepted invalid JSON %q (%v)", in, err)
		}
		m := ref.(map[string]any)
		refApply(t, m, jp.root)
		if res == resUnchanged {
			orig, _ := refDecode(in)
			if !reflect.DeepEqual(orig, m) {
				t.Fatalf("unchanged, but the operations change %q", in)
			}
			return
		}
		got, err := refDecode(out)
		if err != nil {
			t.Fatalf("output %q of %q is invalid: %v", out, in, err)
		}
		if !reflect.DeepEqual(got, any(m)) {
			t.Fatalf("in   %q\nout  %q\ngot  %#v\nwant %#v", in, out, got, m)
		}
	})
}

// FuzzJSONPath: ParseJSONPath never panics, and what it accepts formats
// back to itself; FormatJSONPath output always parses back.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{"a", "meta.source", `a\.b`, `a\\`, "", ".", "a..b", `\`, `a\x`, "é.\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs, err := ParseJSONPath(s)
		if err != nil {
			return
		}
		if got := FormatJSONPath(segs); got != s {
			t.Fatalf("FormatJSONPath(ParseJSONPath(%q)) = %q", s, got)
		}
		for _, seg := range segs {
			if seg == "" || !utf8.ValidString(seg) {
				t.Fatalf("bad segment %q from %q", seg, s)
			}
		}
		again, err := ParseJSONPath(FormatJSONPath(segs))
		if err != nil || !reflect.DeepEqual(again, segs) {
			t.Fatalf("round trip of %q: %q, %v", segs, again, err)
		}
	})
}

// formatTemplate writes t back in template syntax, escaping braces.
func formatTemplate(t Template) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.param != "" {
			b.WriteString("{" + p.param + "}")
			continue
		}
		b.WriteString(strings.NewReplacer("{", "{{", "}", "}}").Replace(p.lit))
	}
	return b.String()
}

// FuzzTemplate: parsing never panics; what the strict parser accepts the
// lax one reads the same way; and a parsed template formats back to a
// string that parses (strictly) to the same parts.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/v2/users/{id}", "{{id}}", "{", "}", "{a}{b}", "{1x}", "a{b", "{id}}", "{{{id}", `{"a":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lax, err := ParseTemplate(s, false)
		strict, serr := ParseTemplate(s, true)
		if serr == nil && (err != nil || !reflect.DeepEqual(lax, strict)) {
			t.Fatalf("strict accepted %q but lax gave %v / differs", s, err)
		}
		if err != nil {
			return
		}
		again, err := ParseTemplate(formatTemplate(lax), true)
		if err != nil || !reflect.DeepEqual(again.parts, lax.parts) || !reflect.DeepEqual(again.params, lax.params) {
			t.Fatalf("%q: parts %q, reformatted %q parses to %q (%v)", s, lax.parts, formatTemplate(lax), again.parts, err)
		}
		for _, p := range lax.Params() {
			if !sdk.ValidParamName(p) {
				t.Fatalf("param %q from %q", p, s)
			}
		}
	})
}

// FuzzQuery checks the raw query editor against fasthttp's own parsing:
// removed names are gone, set names have exactly their value, added ones
// are present, and untouched arguments keep their bytes and order.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"", "a=1", "token=x&b=2", "t%6Fken=x", "v=1&v=2", "old=1&new=2", "a&&b", "=x", "%", "a+b=c", "set=1&set=2&x"} {
		f.Add(s)
	}
	qp := queryProgram{
		remove: []string{"token"},
		rename: []queryOp{{name: "old", to: "new", encTo: "new"}},
		set:    []queryOp{{name: "set", encName: "set", value: Template{lit: "S%20"}}},
		add:    []queryOp{{name: "v", encName: "v", value: Template{lit: "2"}}},
	}
	var rc fasthttp.RequestCtx
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	f.Fuzz(func(t *testing.T, q string) {
		if strings.ContainsAny(q, "#") {
			return
		}
		out, changed, missing := qp.apply(nil, []byte(q), c)
		if missing != "" {
			t.Fatal(missing)
		}
		if !changed {
			out = []byte(q)
		}
		var in, got fasthttp.Args
		in.Parse(q)
		got.ParseBytes(out)
		if got.Has("token") {
			t.Fatalf("%q → %q still has token", q, out)
		}
		if vs := got.PeekMulti("set"); len(vs) != 1 || string(vs[0]) != "S " {
			t.Fatalf("%q → %q: set = %q", q, out, vs)
		}
		if !got.Has("v") {
			t.Fatalf("%q → %q: v missing", q, out)
		}
		if in.Has("v") && string(got.Peek("v")) != string(in.Peek("v")) {
			t.Fatalf("%q → %q: add replaced v", q, out)
		}
		if in.Has("old") {
			if got.Has("old") || string(got.Peek("new")) != string(in.Peek("old")) {
				t.Fatalf("%q → %q: rename", q, out)
			}
		} else if string(got.Peek("new")) != string(in.Peek("new")) {
			t.Fatalf("%q → %q: new changed without old", q, out)
		}
		// Untouched segments keep their bytes, in order.
		var kept []string
		for _, seg := range strings.Split(q, "&") {
			if seg == "" {
				continue
			}
			k, _, _ := strings.Cut(seg, "=")
			var ka fasthttp.Args
			ka.Parse(k)
			name := ""
			for key := range ka.All() {
				name = string(key)
			}
			if name == "token" || name == "old" || name == "new" || name == "set" || name == "v" {
				continue
			}
			kept = append(kept, seg)
		}
		rest := string(out)
		for _, seg := range kept {
			i := strings.Index(rest, seg)
			if i < 0 {
				t.Fatalf("%q → %q lost %q", q, out, seg)
			}
			rest = rest[i+len(seg):]
		}
	})
}
