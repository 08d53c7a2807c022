package transform

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		in     string
		strict bool
		parts  string // fmt of parts
		params string
		err    string
	}{
		{in: "/v2/users/{id}", strict: true, parts: `[{/v2/users/ } { id}]`, params: "[id]"},
		{in: "/{a}/{b}/{a}", strict: true, parts: `[{/ } { a} {/ } { b} {/ } { a}]`, params: "[a b]"},
		{in: "{{id}}", strict: true, parts: `[{{id} }]`, params: "[]"},
		{in: "/plain", strict: true, parts: `[{/plain }]`, params: "[]"},
		{in: "{_x9}", strict: true, parts: `[{ _x9}]`, params: "[_x9]"},
		{in: `{"a":1}`, strict: false, parts: `[{{"a":1} }]`, params: "[]"},
		{in: "a{b", strict: false, parts: `[{a{b }]`, params: "[]"},
		{in: "{9}", strict: false, parts: `[{{9} }]`, params: "[]"},
		{in: `{"a":1}`, strict: true, err: `has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`},
		{in: "/a}", strict: true, err: `has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`},
		{in: "/{a-b}", strict: true, err: `has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`},
		{in: "{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}{o}{p}{q}", err: "uses 17 parameters; a route has at most 16"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tpl, err := ParseTemplate(tt.in, tt.strict)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(tpl.parts); got != tt.parts {
				t.Errorf("parts %s, want %s", got, tt.parts)
			}
			if got := fmt.Sprint(tpl.params); got != tt.params {
				t.Errorf("params %s, want %s", got, tt.params)
			}
		})
	}
}

func TestTemplateRender(t *testing.T) {
	var rc fasthttp.RequestCtx
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	c.AddParam("id", []byte("a b"))
	c.AddParam("empty", []byte{})
	tpl, _ := ParseTemplate("/u/{id}/{empty}x", true)
	if got, missing := tpl.appendTo(nil, c, nil); string(got) != "/u/a b/x" || missing != "" {
		t.Errorf("render %q, missing %q", got, missing)
	}
	q := tpl.mapLiterals(queryEscape)
	if got, _ := q.appendTo(nil, c, appendQueryEscaped); string(got) != "%2Fu%2Fa%20b%2Fx" {
		t.Errorf("escaped render %q", got)
	}
	tpl, _ = ParseTemplate("{nope}", true)
	if _, missing := tpl.appendTo(nil, c, nil); missing != "nope" {
		t.Errorf("missing %q", missing)
	}
}

func TestIsJSONType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"Application/JSON":                true,
		"application/json; charset=utf-8": true,
		" application/json ;x=y":          true,
		"application/problem+json":        true,
		"application/vnd.api+JSON":        true,
		"text/json":                       false,
		"application/jsonp":               false,
		"application/json-seq":            false,
		"+json":                           false,
		"text/plain":                      false,
		"":                                false,
	} {
		if got := isJSONType([]byte(ct)); got != want {
			t.Errorf("isJSONType(%q) = %v", ct, got)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	for p, want := range map[string]bool{
		"/a/b": false, "/a/../b": true, "/a/./b": true, "/..": true, "/.": true,
		"/a/..b": false, "/a/.b/": false, "/": false, "/a/...": false,
	} {
		if got := hasDotSegment([]byte(p)); got != want {
			t.Errorf("hasDotSegment(%q) = %v", p, got)
		}
	}
}

func TestCanonicalHeader(t *testing.T) {
	for in, want := range map[string]string{"x-env": "X-Env", "CONTENT-TYPE": "Content-Type", "te": "Te", "x--a": "X--A"} {
		if got := canonicalHeader(in); got != want {
			t.Errorf("canonicalHeader(%q) = %q, want %q", in, got, want)
		}
	}
}
