package transform

import (
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

func mustJSON(t testing.TB, set map[string]string, remove ...string) *jsonProgram {
	t.Helper()
	m := map[string]json.RawMessage{}
	for k, v := range set {
		m[k] = json.RawMessage(v)
	}
	jp, err := buildJSON(m, remove)
	if err != nil {
		t.Fatal(err)
	}
	return jp
}

func TestJSONRewrite(t *testing.T) {
	tests := []struct {
		name   string
		set    map[string]string
		remove []string
		in     string
		want   string // "" with res != resRewritten
		res    jsonResult
	}{
		{name: "set top-level new key", set: map[string]string{"a": `1`},
			in: `{"b":2}`, want: `{"b":2,"a":1}`, res: resRewritten},
		{name: "set replaces value, keeps order", set: map[string]string{"a": `"x"`},
			in: `{"a":1,"b":2}`, want: `{"a":"x","b":2}`, res: resRewritten},
		{name: "nested create", set: map[string]string{"meta.source": `"weir"`},
			in: `{"id":7}`, want: `{"id":7,"meta":{"source":"weir"}}`, res: resRewritten},
		{name: "nested create three levels", set: map[string]string{"a.b.c": `true`, "a.b.d": `null`},
			in: `{}`, want: `{"a":{"b":{"c":true,"d":null}}}`, res: resRewritten},
		{name: "nested into existing object", set: map[string]string{"meta.source": `"weir"`},
			in: `{"meta":{"v":1}}`, want: `{"meta":{"v":1,"source":"weir"}}`, res: resRewritten},
		{name: "nested into empty object keeps inner whitespace", set: map[string]string{"meta.s": `1`},
			in: `{"meta":{ }}`, want: `{"meta":{"s":1 }}`, res: resRewritten},
		{name: "null intermediate becomes object", set: map[string]string{"meta.s": `1`},
			in: `{"meta":null}`, want: `{"meta":{"s":1}}`, res: resRewritten},
		{name: "non-object intermediate is left alone", set: map[string]string{"meta.s": `1`},
			in: `{"meta":"text"}`, res: resUnchanged},
		{name: "array intermediate is left alone", set: map[string]string{"meta.s": `1`},
			in: `{"meta":[1,2]}`, res: resUnchanged},
		{name: "set object value compacted", set: map[string]string{"o": "{ \"k\" : [1, 2] }"},
			in: `{}`, want: `{"o":{"k":[1,2]}}`, res: resRewritten},
		{name: "remove", remove: []string{"password"},
			in: `{"user":"a","password":"p","x":1}`, want: `{"user":"a","x":1}`, res: resRewritten},
		{name: "remove first", remove: []string{"a"},
			in: `{"a":1,"b":2}`, want: `{"b":2}`, res: resRewritten},
		{name: "remove last", remove: []string{"b"},
			in: `{"a":1,"b":2}`, want: `{"a":1}`, res: resRewritten},
		{name: "remove only", remove: []string{"a"},
			in: `{"a":{"deep":[1,{"x":2}]}}`, want: `{}`, res: resRewritten},
		{name: "remove missing key", remove: []string{"nope"},
			in: `{"a":1}`, res: resUnchanged},
		{name: "remove nested", remove: []string{"user.password"},
			in: `{"user":{"name":"a","password":"p"},"password":"keep"}`, want: `{"user":{"name":"a"},"password":"keep"}`, res: resRewritten},
		{name: "remove nested under non-object", remove: []string{"user.password"},
			in: `{"user":"x"}`, res: resUnchanged},
		{name: "remove ignores case", remove: []string{"password"},
			in: `{"Password":1,"PASSWORD":2,"pass":3}`, want: `{"pass":3}`, res: resRewritten},
		{name: "remove sees through escapes", remove: []string{"password"},
			in: `{"pa\u0073sword":1,"a":2}`, want: `{"a":2}`, res: resRewritten},
		{name: "remove sees through escapes and case", remove: []string{"password"},
			in: `{"PA\u0053SWORD":1}`, want: `{}`, res: resRewritten},
		{name: "remove every duplicate", remove: []string{"a"},
			in: `{"a":1,"b":2,"a":3}`, want: `{"b":2}`, res: resRewritten},
		{name: "set every duplicate", set: map[string]string{"a": `0`},
			in: `{"a":1,"a":3}`, want: `{"a":0,"a":0}`, res: resRewritten},
		{name: "set is case-sensitive", set: map[string]string{"a": `0`},
			in: `{"A":1}`, want: `{"A":1,"a":0}`, res: resRewritten},
		{name: "set and remove together", set: map[string]string{"meta.source": `"weir"`}, remove: []string{"password"},
			in: `{"password":"p","meta":{}}`, want: `{"meta":{"source":"weir"}}`, res: resRewritten},
		{name: "pretty input keeps its layout",
			set: map[string]string{"b": `2`}, remove: []string{"a"},
			in:   "{\n  \"a\": 1,\n  \"c\": [ 1, 2 ],\n  \"b\": 0\n}\n",
			want: "{\n  \"c\": [ 1, 2 ],\n  \"b\": 2\n}\n", res: resRewritten},
		{name: "numbers and escapes copied verbatim", set: map[string]string{"z": `1`},
			in:   `{"n":1.50e+10,"s":"\u00e9\n","big":123456789012345678901234567890}`,
			want: `{"n":1.50e+10,"s":"\u00e9\n","big":123456789012345678901234567890,"z":1}`, res: resRewritten},
		{name: "leading and trailing whitespace kept", set: map[string]string{"a": `1`},
			in: " \n{}\t ", want: " \n{\"a\":1}\t ", res: resRewritten},
		{name: "top-level array", set: map[string]string{"a": `1`}, in: `[{"a":2}]`, res: resNotObject},
		{name: "top-level string", set: map[string]string{"a": `1`}, in: `"x"`, res: resNotObject},
		{name: "invalid: trailing comma", remove: []string{"a"}, in: `{"a":1,}`, res: resInvalid},
		{name: "invalid: garbage after", remove: []string{"a"}, in: `{"a":1} x`, res: resInvalid},
		{name: "invalid: two documents", remove: []string{"a"}, in: `{"a":1}{}`, res: resInvalid},
		{name: "invalid: in untouched value", remove: []string{"a"}, in: `{"a":1,"b":[1,,2]}`, res: resInvalid},
		{name: "invalid: leading zero", remove: []string{"a"}, in: `{"b":01}`, res: resInvalid},
		{name: "invalid: bad escape", remove: []string{"a"}, in: `{"b":"\x"}`, res: resInvalid},
		{name: "invalid: raw newline in string", remove: []string{"a"}, in: "{\"b\":\"a\nb\"}", res: resInvalid},
		{name: "invalid: truncated", set: map[string]string{"a": `1`}, in: `{"a":`, res: resInvalid},
		{name: "invalid: single quotes", set: map[string]string{"a": `1`}, in: `{'a':1}`, res: resInvalid},
		{name: "invalid: bare word", set: map[string]string{"a": `1`}, in: `{"a":nul}`, res: resInvalid},
		{name: "invalid: not json", set: map[string]string{"a": `1`}, in: `a=1&b=2`, res: resInvalid},
		{name: "invalid: empty", set: map[string]string{"a": `1`}, in: ` `, res: resInvalid},
		{name: "too deep", remove: []string{"a"}, in: `{"x":` + strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1) + `}`, res: resInvalid},
		{name: "deep but allowed", remove: []string{"a"}, in: `{"a":1,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
			want: `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, res: resRewritten},
		{name: "escaped dot key", set: map[string]string{`a\.b`: `1`}, in: `{"a":{}}`, want: `{"a":{},"a.b":1}`, res: resRewritten},
		{name: "html chars in created key", set: map[string]string{`<k>`: `1`}, in: `{}`, want: `{"\u003ck\u003e":1}`, res: resRewritten},
		{name: "surrogate pair key", remove: []string{"😀"}, in: `{"\ud83d\ude00":1,"b":2}`, want: `{"b":2}`, res: resRewritten},
		{name: "lone surrogate key is U+FFFD", remove: []string{"\uFFFD"}, in: `{"\ud83d":1}`, want: `{}`, res: resRewritten},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jp := mustJSON(t, tt.set, tt.remove...)
			out, res := jp.rewrite(nil, []byte(tt.in))
			if res != tt.res {
				t.Fatalf("result %s, want %s (out %q)", resultNames[res], resultNames[tt.res], out)
			}
			if res == resRewritten && string(out) != tt.want {
				t.Fatalf("got  %s\nwant %s", out, tt.want)
			}
			if res == resRewritten && !json.Valid(out) {
				t.Fatalf("output is not valid JSON: %s", out)
			}
		})
	}
}

func TestBuildJSONErrors(t *testing.T) {
	tests := []struct {
		name   string
		set    map[string]string
		remove []string
		err    string
	}{
		{name: "empty path", remove: []string{""}, err: `json.remove[0]: "" is empty; write a dotted path such as meta.source`},
		{name: "empty segment", set: map[string]string{"a..b": `1`}, err: `json.set.a..b: "a..b" has an empty segment; write a dotted path such as meta.source`},
		{name: "trailing dot", remove: []string{"a."}, err: `json.remove[0]: "a." has an empty segment; write a dotted path such as meta.source`},
		{name: "bad escape", remove: []string{`a\b`}, err: `json.remove[0]: "a\\b" has a "\" that escapes neither "." nor "\"; write \. for a dot inside a key and \\ for a backslash`},
		{name: "same path twice", remove: []string{"a", "a"}, err: `json: "a" appears twice (in set or remove); keep one`},
		{name: "set and remove same", set: map[string]string{"a": `1`}, remove: []string{"a"}, err: `json: "a" appears twice (in set or remove); keep one`},
		{name: "inside a set", set: map[string]string{"a": `{}`, "a.b": `1`}, err: `json: "a" and "a.b" overlap; a path may not be equal to or inside another`},
		{name: "contains a set", set: map[string]string{"a.b": `1`}, remove: []string{"a"}, err: `json: "a.b" and "a" overlap; a path may not be equal to or inside another`},
		{name: "case twins with remove", set: map[string]string{"meta.a": `1`}, remove: []string{"META.b"},
			err: `json: the keys "META" and "meta" differ only in case, and remove matches keys whatever their case; write them the same way`},
		{name: "invalid value", set: map[string]string{"a": `{`}, err: `json.set.a: the value is not valid JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]json.RawMessage{}
			for k, v := range tt.set {
				m[k] = json.RawMessage(v)
			}
			_, err := buildJSON(m, tt.remove)
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestJSONPathRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		segs []string
	}{
		{"a", []string{"a"}},
		{"meta.source", []string{"meta", "source"}},
		{`a\.b.c`, []string{"a.b", "c"}},
		{`a\\.b`, []string{`a\`, "b"}},
		{"0.1", []string{"0", "1"}},
		{"é.ü", []string{"é", "ü"}},
	}
	for _, tt := range tests {
		segs, err := ParseJSONPath(tt.in)
		if err != nil || strings.Join(segs, "|") != strings.Join(tt.segs, "|") {
			t.Errorf("ParseJSONPath(%q) = %q, %v; want %q", tt.in, segs, err, tt.segs)
		}
		if got := FormatJSONPath(segs); got != tt.in {
			t.Errorf("FormatJSONPath(%q) = %q, want %q", segs, got, tt.in)
		}
	}
}
