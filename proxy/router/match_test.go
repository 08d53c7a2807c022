package router

import (
	"fmt"
	"strings"
	"testing"
)

// One route per table: what each pattern kind matches on its own.
func TestPathKinds(t *testing.T) {
	tests := []struct {
		pattern string
		strip   bool
		cases   map[string]string // path → describe() result
	}{
		{"/users", false, map[string]string{
			"/users":      "Found route=0 path=0 strip=6 params=",
			"/users/":     "Found route=0 path=0 strip=6 params=",
			"/users/7":    "Found route=0 path=0 strip=6 params=",
			"/users/7/x/": "Found route=0 path=0 strip=6 params=",
			"/usersx":     "NotFound",
			"/user":       "NotFound",
			"/":           "NotFound",
			"/Users":      "NotFound",
		}},
		{"/api/", false, map[string]string{
			"/api/":   "Found route=0 path=0 strip=4 params=",
			"/api/v1": "Found route=0 path=0 strip=4 params=",
			"/api":    "NotFound",
			"/apix/":  "NotFound",
		}},
		{"/", false, map[string]string{
			"/":     "Found route=0 path=0 strip=0 params=",
			"/a/b/": "Found route=0 path=0 strip=0 params=",
		}},
		{"/a/b/c", false, map[string]string{
			"/a/b/c":   "Found route=0 path=0 strip=6 params=",
			"/a/b/c/d": "Found route=0 path=0 strip=6 params=",
			"/a/b":     "NotFound",
			"/a/b/cd":  "NotFound",
		}},
		// Prefixes of shallowPrefix segments or more take the walk with
		// room for maxSegments (matchDeepPrefix).
		{"/a/b/c/d/e/f/g/h/i", false, map[string]string{
			"/a/b/c/d/e/f/g/h/i":     "Found route=0 path=0 strip=18 params=",
			"/a/b/c/d/e/f/g/h/i/j/k": "Found route=0 path=0 strip=18 params=",
			"/a/b/c/d/e/f/g/h":       "NotFound",
			"/a/b/c/d/e/f/g/h/ix":    "NotFound",
		}},
		{"=/users", false, map[string]string{
			"/users":   "Found route=0 path=0 strip=6 params=",
			"/users/":  "NotFound",
			"/users/7": "NotFound",
		}},
		{"=/", false, map[string]string{
			"/":  "Found route=0 path=0 strip=1 params=",
			"/a": "NotFound",
		}},
		{"/users/{id}", false, map[string]string{
			"/users/7":      "Found route=0 path=0 strip=8 params=id=7",
			"/users/abc%20": "Found route=0 path=0 strip=13 params=id=abc%20",
			"/users/":       "NotFound",
			"/users":        "NotFound",
			"/users/7/":     "NotFound",
			"/users/7/x":    "NotFound",
			"/other/7":      "NotFound",
		}},
		{"/users/{id}/", false, map[string]string{
			"/users/7/": "Found route=0 path=0 strip=9 params=id=7",
			"/users/7":  "NotFound",
		}},
		{"/{a}/x/{b}", false, map[string]string{
			"/1/x/2":  "Found route=0 path=0 strip=6 params=a=1,b=2",
			"/1/y/2":  "NotFound",
			"//x/2":   "NotFound",
			"/1/x/2/": "NotFound",
		}},
		{"~^/v[0-9]+/", false, map[string]string{
			"/v1/users": "Found route=0 path=0 strip=0 params=",
			"/v/users":  "NotFound",
			"/x/v1/":    "NotFound",
		}},
		{"~^/v[0-9]+/", true, map[string]string{
			"/v12/users": "Found route=0 path=0 strip=4 params=",
			"/v1/":       "Found route=0 path=0 strip=3 params=",
		}},
		{"~/v[0-9]+$", true, map[string]string{
			"/api/v2": "Found route=0 path=0 strip=0 params=",
			"/v2":     "Found route=0 path=0 strip=3 params=",
			"/v2/x":   "NotFound",
		}},
		{"~^/(?P<kind>a|b)(/(?P<id>[0-9]+))?$", false, map[string]string{
			"/a/1": "Found route=0 path=0 strip=0 params=kind=a,id=1", // no StripPath: not computed
			"/b":   "Found route=0 path=0 strip=0 params=kind=b",
			"/c":   "NotFound",
		}},
		{"~(?i)^/caps$", false, map[string]string{
			"/CAPS": "Found route=0 path=0 strip=0 params=",
			"/caps": "Found route=0 path=0 strip=0 params=",
		}},
	}
	for _, tt := range tests {
		r := mustCompile(t, []Spec{{Paths: []string{tt.pattern}, StripPath: tt.strip}})
		for path, want := range tt.cases {
			if got := doMatch(r, "", "GET", path, nil); got != want {
				t.Errorf("%q (strip %v) on %q: got %s, want %s", tt.pattern, tt.strip, path, got, want)
			}
		}
	}
}

func TestHeaderConditions(t *testing.T) {
	r := mustCompile(t, []Spec{
		0: {Paths: []string{"/"}, Headers: map[string]string{"x-version": "2", "X-Tenant": "acme"}},
		1: {Paths: []string{"/"}, Headers: map[string]string{"X-Version": "2"}},
	})
	tests := []struct {
		h    Headers
		want string
	}{
		{hdr("X-Version: 2", "X-Tenant: acme"), "Found route=0 path=0 strip=0 params="},
		{hdr("x-tenant: acme", "X-VERSION: 2"), "Found route=0 path=0 strip=0 params="},
		{hdr("X-Version: 2", "X-Tenant: ACME"), "Found route=1 path=0 strip=0 params="},
		{hdr("X-Version: 2"), "Found route=1 path=0 strip=0 params="},
		{hdr("X-Version: 2 "), "Found route=1 path=0 strip=0 params="}, // hdr trims; values are exact
		{hdr("X-Version: 22"), "NotFound"},
		{hdr(), "NotFound"},
		{nil, "NotFound"},
	}
	for i, tt := range tests {
		if got := doMatch(r, "", "GET", "/", tt.h); got != tt.want {
			t.Errorf("case %d: got %s, want %s", i, got, tt.want)
		}
	}
}

// A Match is reused across requests: nothing from the previous result
// may leak into the next.
func TestMatchReuse(t *testing.T) {
	r := mustCompile(t, []Spec{
		{Paths: []string{"/u/{id}"}},
		{Paths: []string{"=/x"}, Methods: []string{"GET"}},
		{Paths: []string{"/p"}},
	})
	var m Match
	steps := []struct{ method, path, want string }{
		{"GET", "/u/1", "Found route=0 path=0 strip=4 params=id=1"},
		{"POST", "/x", "MethodNotAllowed allow=GET"},
		{"GET", "/p/q", "Found route=2 path=0 strip=2 params="},
		{"GET", "/nope", "NotFound"},
	}
	for _, s := range steps {
		res := r.Match(nil, []byte(s.method), []byte(s.path), nil, &m)
		if got := describe(res, &m); got != s.want {
			t.Errorf("%s %s: got %s, want %s", s.method, s.path, got, s.want)
		}
		if res != MethodNotAllowed && m.Allow != nil {
			t.Errorf("%s %s: Allow left over: %q", s.method, s.path, m.Allow)
		}
		if res != Found && (m.Route != -1 || m.NParams != 0) {
			t.Errorf("%s %s: Route %d NParams %d left over", s.method, s.path, m.Route, m.NParams)
		}
	}
}

// Allow merged from many custom methods outgrows Match's buffer and must
// still be right.
func TestAllowLong(t *testing.T) {
	var specs []Spec
	var want string
	for i := 0; i < 40; i++ {
		m := "CUSTOM-METHOD-" + string(rune('A'+i/26)) + string(rune('A'+i%26))
		specs = append(specs, Spec{Paths: []string{"/"}, Methods: []string{m}})
		if want != "" {
			want += ", "
		}
		want += m
	}
	r := mustCompile(t, specs)
	if got := doMatch(r, "", "GET", "/", nil); got != "MethodNotAllowed allow="+want {
		t.Errorf("got %s\nwant MethodNotAllowed allow=%s", got, want)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{NotFound: "NotFound", Found: "Found", MethodNotAllowed: "MethodNotAllowed", 9: "Result(9)"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
	}
}

// One Router serves every request of a snapshot at once; run under -race.
func TestConcurrentMatch(t *testing.T) {
	r := mustCompile(t, precedenceSpecs)
	cases := []struct{ host, path, want string }{
		{"", "/users/7", "Found route=3 path=0 strip=8 params=id=7"},
		{"x.example.com", "/users", "Found route=11 path=0 strip=6 params="},
		{"re.test", "/files/a/b/c", "Found route=28 path=0 strip=12 params=name=a,rest=b/c"},
	}
	done := make(chan string)
	for g := 0; g < 4; g++ {
		go func() {
			var m Match
			for i := 0; i < 500; i++ {
				c := cases[(g+i)%len(cases)]
				res := r.Match([]byte(c.host), []byte("GET"), []byte(c.path), nil, &m)
				if got := describe(res, &m); got != c.want {
					done <- c.path + ": " + got
					return
				}
			}
			done <- ""
		}()
	}
	for g := 0; g < 4; g++ {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}

// More nested literal prefixes on one path than the regex index merges on
// the stack: Match falls back to trying every regex, still in config order.
func TestRegexIndexManyNestedPrefixes(t *testing.T) {
	var specs []Spec
	for i := 0; i < 2*maxRegexLists; i++ {
		// Route i matches "/" followed by exactly i+1 "a"s, optionally
		// followed by a segment.
		specs = append(specs, Spec{Paths: []string{"~^/" + strings.Repeat("a", i+1) + "(/|$)"}})
	}
	specs = append(specs, Spec{Paths: []string{"~^/a"}}) // last: any path of a's
	r := mustCompile(t, specs)
	for _, n := range []int{1, maxRegexLists - 1, maxRegexLists, maxRegexLists + 1, 2 * maxRegexLists} {
		path := "/" + strings.Repeat("a", n) + "/x"
		want := fmt.Sprintf("Found route=%d path=0 strip=0 params=", n-1)
		if got := doMatch(r, "", "GET", path, nil); got != want {
			t.Errorf("Match(%q) = %s, want %s", path, got, want)
		}
	}
	path := "/" + strings.Repeat("a", 3*maxRegexLists)
	want := fmt.Sprintf("Found route=%d path=0 strip=0 params=", 2*maxRegexLists)
	if got := doMatch(r, "", "GET", path, nil); got != want {
		t.Errorf("Match(%q) = %s, want %s", path, got, want)
	}
}
