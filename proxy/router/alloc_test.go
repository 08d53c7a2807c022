package router

import (
	"fmt"
	"strings"
	"testing"
)

// Every pattern kind matches without allocating (docs/architecture.md: no allocation per request). The
// routers are big enough that the tries and maps are really used.
func TestMatchAllocs(t *testing.T) {
	var specs []Spec
	for i := 0; i < 50; i++ {
		specs = append(specs,
			Spec{Paths: []string{fmt.Sprintf("=/exact/%d", i)}, Methods: []string{"GET"}},
			Spec{Paths: []string{fmt.Sprintf("/prefix/%d", i)}},
			Spec{Paths: []string{fmt.Sprintf("/param/%d/{id}/items/{item}", i)}},
			Spec{Hosts: []string{fmt.Sprintf("*.tenant%d.example.com", i)}, Paths: []string{"/"}},
			Spec{Paths: []string{fmt.Sprintf("/hdr/%d", i)}, Headers: map[string]string{"X-Version": "2", "X-Tenant": "acme"}},
			Spec{Paths: []string{fmt.Sprintf("/m/%d", i)}, Methods: []string{"GET", "HEAD"}},
			Spec{Paths: []string{fmt.Sprintf("/m/%d", i)}, Methods: []string{"POST"}},
			Spec{Paths: []string{fmt.Sprintf("~^/rx/%d/[a-z]+$", i)}},
		)
	}
	specs = append(specs,
		Spec{Paths: []string{"/m2"}, Methods: []string{"GET"}},
		Spec{Paths: []string{"/m2"}, Methods: []string{"PUT", "DELETE"}},
		// Shares the literal prefix of the regexes above, so that a regex
		// request merges two candidate lists of the regex index.
		Spec{Paths: []string{"~^/rx/"}, Methods: []string{"GET"}},
	)
	r := mustCompile(t, specs)
	var h Headers = hdr("X-Tenant: acme", "X-Version: 2") // converted once: a slice in an interface is boxed
	tests := []struct {
		name, host, method, path string
		want                     Result
	}{
		{"exact", "", "GET", "/exact/49", Found},
		{"prefix", "", "GET", "/prefix/49/a/b/c", Found},
		{"param", "", "GET", "/param/49/7/items/9", Found},
		{"wildcard host", "a.b.tenant49.example.com", "GET", "/x", Found},
		{"header match", "", "GET", "/hdr/49", Found},
		{"regex", "", "GET", "/rx/49/abc", Found},
		{"405 precomputed Allow", "", "PUT", "/exact/49", MethodNotAllowed},
		{"405 merged Allow", "", "PATCH", "/m/49", MethodNotAllowed},
		{"405 merged twice", "", "PATCH", "/m2/x", MethodNotAllowed},
		{"not found", "nohost.test", "GET", "/nothing/here", NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, method, path := []byte(tt.host), []byte(tt.method), []byte(tt.path)
			var m Match
			if res := r.Match(host, method, path, h, &m); res != tt.want {
				t.Fatalf("Match = %v, want %v", res, tt.want)
			}
			if raceEnabled && strings.Contains(tt.name, "regex") {
				t.Skip("regexp pools its matchers; sync.Pool drops items under -race")
			}
			if n := testing.AllocsPerRun(200, func() { r.Match(host, method, path, h, &m) }); n != 0 {
				t.Errorf("Match allocates %v times per call", n)
			}
		})
	}
}

// A regex with named groups needs FindSubmatchIndex, whose result the
// regexp package allocates; this pins the documented cost at exactly one.
func TestMatchAllocsRegexCapture(t *testing.T) {
	if raceEnabled {
		t.Skip("regexp pools its matchers; sync.Pool drops items under -race")
	}
	r := mustCompile(t, []Spec{{Paths: []string{"~^/v(?P<v>[0-9]+)/(?P<rest>.*)"}}})
	path := []byte("/v2/users")
	var m Match
	n := testing.AllocsPerRun(200, func() { r.Match(nil, []byte("GET"), path, nil, &m) })
	if n != 1 {
		t.Errorf("regex with named groups allocates %v times, the doc says 1", n)
	}
}
