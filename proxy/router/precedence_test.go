package router

import "testing"

// precedenceSpecs exercises every rule of the precedence order (see the
// package doc); the index of each spec is its route number.
var precedenceSpecs = []Spec{
	0:  {Paths: []string{"/"}},
	1:  {Paths: []string{"/users"}},
	2:  {Paths: []string{"=/users"}},
	3:  {Paths: []string{"/users/{id}"}},
	4:  {Paths: []string{"/users/{id}/posts/{post}"}},
	5:  {Paths: []string{"/users/me"}},
	6:  {Paths: []string{"/{a}/{b}"}},
	7:  {Paths: []string{"~^/users/[0-9]+$"}},
	8:  {Paths: []string{"~^/files/(?P<name>.+)$"}},
	9:  {Paths: []string{"/files/"}},
	10: {Hosts: []string{"api.example.com"}, Paths: []string{"/"}},
	11: {Hosts: []string{"*.example.com"}, Paths: []string{"=/users"}},
	12: {Hosts: []string{"*.eu.example.com"}, Paths: []string{"/users"}},
	13: {Paths: []string{"=/only-get"}, Methods: []string{"GET"}},
	14: {Paths: []string{"/v/{x}"}, Headers: map[string]string{"X-Version": "2"}},
	15: {Paths: []string{"/v/{x}"}},
	16: {Paths: []string{"/api", "/api/"}},
	17: {Paths: []string{"/api/v1"}},
	18: {Paths: []string{"/api/v1"}},
	19: {Paths: []string{"/a/{x}/{y}"}},
	20: {Paths: []string{"/{x}/b/c"}},
	21: {Paths: []string{"/{x}/b/{y}"}},
	22: {Hosts: []string{"re.test"}, Paths: []string{"~^/re/one"}},
	23: {Hosts: []string{"re.test"}, Paths: []string{"~^/re/"}},
	24: {Paths: []string{"=/users"}, Methods: []string{"DELETE"}},
	25: {Hosts: []string{"[::1]"}, Paths: []string{"/users"}},
	26: {Paths: []string{"/deep/{a}/x"}, Methods: []string{"POST"}},
	27: {Paths: []string{"/deep"}},
	28: {Hosts: []string{"re.test"}, Paths: []string{"~^/files/(?P<name>[^/]+)/(?P<rest>.*)$"}, StripPath: true},
	29: {Hosts: []string{"re.test"}, Paths: []string{"/files/x"}},
	30: {Hosts: []string{"re.test"}, Paths: []string{"~/tail$"}, StripPath: true},
	// Regexes in the regex index: config order must win over the length of
	// the literal prefix, and over whether a regex has one at all.
	31: {Hosts: []string{"rx.test"}, Paths: []string{"~^/shared/"}},
	32: {Hosts: []string{"rx.test"}, Paths: []string{"~^/shared/long"}},
	33: {Hosts: []string{"rx.test"}, Paths: []string{"~^/deep/a/b/"}},
	34: {Hosts: []string{"rx.test"}, Paths: []string{"~^/deep/a/"}},
	35: {Hosts: []string{"rx.test"}, Paths: []string{"~/anywhere$"}},
	36: {Hosts: []string{"rx.test"}, Paths: []string{"~^/pl/"}},
	37: {Hosts: []string{"rx.test"}, Paths: []string{"~^/Case/"}},
	38: {Hosts: []string{"rx.test"}, Paths: []string{"~(?i)^/case/"}},
	39: {Hosts: []string{"rx.test"}, Paths: []string{"~^/(a|b)/"}},
	40: {Hosts: []string{"rx.test"}, Paths: []string{"~^(/c|/d)/x"}},
	41: {Hosts: []string{"rx.test"}, Paths: []string{"~^/two/a$", "~^/two/b$"}},
}

func TestPrecedence(t *testing.T) {
	r := mustCompile(t, precedenceSpecs)
	tests := []struct {
		name, host, method, path string
		h                        Headers
		want                     string
	}{
		{"exact beats param, prefix and regex", "", "GET", "/users", nil, "Found route=2 path=0 strip=6 params="},
		{"exact in config order: the earlier route wins", "", "DELETE", "/users", nil, "Found route=2 path=0 strip=6 params="},
		{"param beats prefix and regex", "", "GET", "/users/7", nil, "Found route=3 path=0 strip=8 params=id=7"},
		{"param beats a longer prefix", "", "GET", "/users/me", nil, "Found route=3 path=0 strip=9 params=id=me"},
		{"longest prefix when no param has the segment count", "", "GET", "/users/me/x", nil, "Found route=5 path=0 strip=9 params="},
		{"two params", "", "GET", "/users/7/posts/9", nil, "Found route=4 path=0 strip=16 params=id=7,post=9"},
		{"param with fewer literals when the better one does not match", "", "GET", "/foo/bar", nil, "Found route=6 path=0 strip=8 params=a=foo,b=bar"},
		{"param never matches an empty segment", "", "GET", "/users/", nil, "Found route=1 path=0 strip=6 params="},
		{"prefix is segment-aware", "", "GET", "/usersx", nil, "Found route=0 path=0 strip=0 params="},
		{"prefix with slash beats regex", "", "GET", "/files/a/b", nil, "Found route=9 path=0 strip=6 params="},
		{"prefix with slash needs the slash", "", "GET", "/files", nil, "Found route=0 path=0 strip=0 params="},
		{"exact host beats hostless exact", "api.example.com", "GET", "/users", nil, "Found route=10 path=0 strip=0 params="},
		{"exact host is case-insensitive and ignores the port", "API.Example.COM:8443", "GET", "/users", nil, "Found route=10 path=0 strip=0 params="},
		{"wildcard host", "x.example.com", "GET", "/users", nil, "Found route=11 path=0 strip=6 params="},
		{"wildcard group falls back to hostless", "x.example.com", "GET", "/users/7", nil, "Found route=3 path=0 strip=8 params=id=7"},
		{"longer wildcard first, even a prefix over an exact", "a.eu.example.com", "GET", "/users", nil, "Found route=12 path=0 strip=6 params="},
		{"wildcard at any depth", "a.b.c.example.com", "GET", "/users", nil, "Found route=11 path=0 strip=6 params="},
		{"wildcard never matches its own suffix", "eu.example.com", "GET", "/users", nil, "Found route=11 path=0 strip=6 params="},
		{"bare domain is hostless", "example.com", "GET", "/users", nil, "Found route=2 path=0 strip=6 params="},
		{"IPv6 host", "[0:0::1]:8080", "GET", "/users/7", nil, "Found route=25 path=0 strip=6 params="},
		{"a full match later beats a method mismatch earlier", "", "POST", "/only-get", nil, "Found route=0 path=0 strip=0 params="},
		{"method match", "", "GET", "/only-get", nil, "Found route=13 path=0 strip=9 params="},
		{"header match wins the tie", "", "GET", "/v/1", hdr("x-version: 2"), "Found route=14 path=0 strip=4 params=x=1"},
		{"header mismatch falls through", "", "GET", "/v/1", hdr("X-Version: 3"), "Found route=15 path=0 strip=4 params=x=1"},
		{"absent header falls through", "", "GET", "/v/1", nil, "Found route=15 path=0 strip=4 params=x=1"},
		{"second path of a route", "", "GET", "/api/x/y", nil, "Found route=16 path=1 strip=4 params="},
		{"bare prefix when the slash form cannot match", "", "GET", "/api", nil, "Found route=16 path=0 strip=4 params="},
		{"same prefix: config order", "", "GET", "/api/v1/x", nil, "Found route=17 path=0 strip=7 params="},
		{"params: more literals first, not config order", "", "GET", "/a/b/c", nil, "Found route=20 path=0 strip=6 params=x=a"},
		{"params: same literal count keeps config order", "", "GET", "/a/b/d", nil, "Found route=19 path=0 strip=6 params=x=b,y=d"},
		{"params: third choice", "", "GET", "/z/b/d", nil, "Found route=21 path=0 strip=6 params=x=z,y=d"},
		{"regex in config order", "re.test", "GET", "/re/one/1", nil, "Found route=22 path=0 strip=0 params="},
		{"second regex", "re.test", "GET", "/re/two/2", nil, "Found route=23 path=0 strip=0 params="},
		{"regex named groups and strip", "re.test", "GET", "/files/a/b/c", nil, "Found route=28 path=0 strip=12 params=name=a,rest=b/c"},
		{"regex strip keeps the slash", "re.test", "GET", "/files/a/", nil, "Found route=28 path=0 strip=8 params=name=a,rest="},
		{"prefix in the host group beats its regex", "re.test", "GET", "/files/x/y", nil, "Found route=29 path=0 strip=8 params="},
		{"unanchored regex not at 0 strips nothing", "re.test", "GET", "/a/tail", nil, "Found route=30 path=0 strip=0 params="},
		{"host group without a match falls back to hostless", "re.test", "GET", "/zzz", nil, "Found route=0 path=0 strip=0 params="},
		{"regex only after exact, param and prefix", "", "GET", "/files", nil, "Found route=0 path=0 strip=0 params="},
		{"regex shared prefix: the earlier shorter one wins", "rx.test", "GET", "/shared/long/x", nil, "Found route=31 path=0 strip=0 params="},
		{"regex shared prefix: the earlier longer one wins", "rx.test", "GET", "/deep/a/b/c", nil, "Found route=33 path=0 strip=0 params="},
		{"regex shared prefix: the longer one does not match", "rx.test", "GET", "/deep/a/c", nil, "Found route=34 path=0 strip=0 params="},
		{"regex without a prefix before one with it", "rx.test", "GET", "/pl/anywhere", nil, "Found route=35 path=0 strip=0 params="},
		{"regex with a prefix after one without it", "rx.test", "GET", "/pl/elsewhere", nil, "Found route=36 path=0 strip=0 params="},
		{"regex prefix is case-sensitive", "rx.test", "GET", "/Case/x", nil, "Found route=37 path=0 strip=0 params="},
		{"regex prefix of another case falls to (?i)", "rx.test", "GET", "/case/x", nil, "Found route=38 path=0 strip=0 params="},
		{"(?i) regex has no prefix", "rx.test", "GET", "/CASE/x", nil, "Found route=38 path=0 strip=0 params="},
		{"alternation at the start, first branch", "rx.test", "GET", "/a/x", nil, "Found route=39 path=0 strip=0 params="},
		{"alternation at the start, second branch", "rx.test", "GET", "/b/x", nil, "Found route=39 path=0 strip=0 params="},
		{"alternation of literals at the start", "rx.test", "GET", "/d/x", nil, "Found route=40 path=0 strip=0 params="},
		{"second regex path of a route", "rx.test", "GET", "/two/b", nil, "Found route=41 path=1 strip=0 params="},
		{"host regex group falls back to the hostless regexes", "rx.test", "GET", "/shared", nil, "Found route=0 path=0 strip=0 params="},
		{"param method mismatch falls to the prefix", "", "GET", "/deep/q/x", nil, "Found route=27 path=0 strip=5 params="},
		{"param with its method", "", "POST", "/deep/q/x", nil, "Found route=26 path=0 strip=9 params=a=q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := doMatch(r, tt.host, tt.method, tt.path, tt.h); got != tt.want {
				t.Errorf("Match(%q, %s, %q)\n got  %s\n want %s", tt.host, tt.method, tt.path, got, tt.want)
			}
		})
	}
}

// No catch-all here, so method mismatches surface as 405.
var methodSpecs = []Spec{
	0: {Paths: []string{"/admin"}, Methods: []string{"GET", "head"}},
	1: {Paths: []string{"/admin"}, Methods: []string{"POST"}, Headers: map[string]string{"X-Role": "admin"}},
	2: {Paths: []string{"/admin"}, Methods: []string{"DELETE"}, Headers: map[string]string{"X-Role": "root"}},
	3: {Paths: []string{"=/one"}, Methods: []string{"PUT"}},
	4: {Paths: []string{"/p/{id}"}, Methods: []string{"PATCH", "GET"}},
	5: {Paths: []string{"~^/rx/"}, Methods: []string{"PURGE"}},
	6: {Hosts: []string{"h.test"}, Paths: []string{"/p"}, Methods: []string{"OPTIONS"}},
	7: {Paths: []string{"/any"}},
}

func TestMethodNotAllowed(t *testing.T) {
	r := mustCompile(t, methodSpecs)
	tests := []struct {
		name, host, method, path string
		h                        Headers
		want                     string
	}{
		{"GET", "", "GET", "/admin", nil, "Found route=0 path=0 strip=6 params="},
		{"lowercase config method was uppercased", "", "HEAD", "/admin", nil, "Found route=0 path=0 strip=6 params="},
		{"HEAD is not implied", "", "HEAD", "/one", nil, "MethodNotAllowed allow=PUT"},
		{"methods are case-sensitive on the wire", "", "get", "/admin", nil, "MethodNotAllowed allow=GET, HEAD"},
		{"header route only counts when its headers match", "", "PUT", "/admin", nil, "MethodNotAllowed allow=GET, HEAD"},
		{"merged Allow is sorted", "", "PUT", "/admin/x", hdr("X-Role: admin"), "MethodNotAllowed allow=GET, HEAD, POST"},
		{"header route with the method", "", "POST", "/admin", hdr("X-Role: admin"), "Found route=1 path=0 strip=6 params="},
		{"other header route", "", "DELETE", "/admin", hdr("X-Role: root"), "Found route=2 path=0 strip=6 params="},
		{"param 405", "", "POST", "/p/7", nil, "MethodNotAllowed allow=GET, PATCH"},
		{"regex 405", "", "GET", "/rx/a", nil, "MethodNotAllowed allow=PURGE"},
		{"unknown method", "", "BREW", "/rx/a", nil, "MethodNotAllowed allow=PURGE"},
		{"host and hostless merge", "h.test", "PUT", "/p/1", nil, "MethodNotAllowed allow=GET, OPTIONS, PATCH"},
		{"host group alone", "h.test", "GET", "/p", nil, "MethodNotAllowed allow=OPTIONS"},
		{"any-method route never 405s", "", "BREW", "/any", nil, "Found route=7 path=0 strip=4 params="},
		{"no path match", "", "GET", "/nothing", nil, "NotFound"},
		{"path not normalized", "", "GET", "admin", nil, "NotFound"},
		{"empty path", "", "GET", "", nil, "NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := doMatch(r, tt.host, tt.method, tt.path, tt.h); got != tt.want {
				t.Errorf("Match(%q, %s, %q)\n got  %s\n want %s", tt.host, tt.method, tt.path, got, tt.want)
			}
		})
	}
}
