package router

import (
	"reflect"
	"testing"
)

// The literals Match tests before running a regex must be ones that every
// match really has; otherwise a matching route would be skipped.
func TestRegexPrefilters(t *testing.T) {
	tests := []struct{ expr, prefix, need string }{
		{"^/v1/", "/v1/", ""},
		{"^/api/v[0-9]+/users/[0-9]+$", "/api/v", "/users/"},
		{"/users/[0-9]+$", "", "/users/"},
		{"^(/v1)/x", "/v1/x", ""},
		{"^/a(?P<id>[0-9]+)/bcdef", "/a", "/bcdef"},
		{"^/(a|b)/", "/", ""},
		{"(?i)^/caps", "", ""},
		{"^/(?i:x)yz", "/", "yz"},
		{"(?m)^/v1", "", "/v1"},
		{"/v1|/v2", "", "/v"}, // the parser factors the common prefix out
		{"^/x?abc", "/", "abc"},
		{"(abc)+d", "", "abc"},
		{"(abcd){2,3}", "", "abcdabcd"}, // Simplify spells out the minimum
		{"(abcd){0,3}e", "", "e"},
		{"^/\ufffd", "", ""},
		{"\ufffdxyz", "", ""},
		{".*", "", ""},
		{"^", "", ""},
		{"^$", "", ""},
	}
	for _, tt := range tests {
		p, msg := parsePath("~" + tt.expr)
		if msg != "" {
			t.Fatalf("%q: %s", tt.expr, msg)
		}
		if p.relit != tt.prefix || p.reneed != tt.need {
			t.Errorf("%q: prefix %q need %q, want %q %q", tt.expr, p.relit, p.reneed, tt.prefix, tt.need)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want pattern
	}{
		{"/", pattern{kind: kindPrefix, path: "/", slash: true}},
		{"/users", pattern{kind: kindPrefix, path: "/users", segs: []string{"users"}}},
		{"/api/v1/", pattern{kind: kindPrefix, path: "/api/v1/", segs: []string{"api", "v1"}, slash: true}},
		{"=/users/", pattern{kind: kindExact, path: "/users/"}},
		{"/u/{id}/x", pattern{kind: kindParam, path: "/u/{id}/x", psegs: []pseg{{lit: "u"}, {param: "id"}, {lit: "x"}}, nlit: 2}},
		{"/u/{id}/", pattern{kind: kindParam, path: "/u/{id}/", psegs: []pseg{{lit: "u"}, {param: "id"}, {lit: ""}}, nlit: 2}},
	}
	for _, tt := range tests {
		got, msg := parsePath(tt.in)
		if msg != "" {
			t.Errorf("%q: %s", tt.in, msg)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got  %+v\n want %+v", tt.in, got, tt.want)
		}
	}
}
