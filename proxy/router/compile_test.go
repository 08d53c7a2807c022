package router

import (
	"fmt"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		spec Spec
		want []string // every error, in order
	}{
		{"path without slash", Spec{Paths: []string{"users"}},
			[]string{`routes[0].paths[0]: "users" must start with "/", "=/" or "~"`}},
		{"empty path", Spec{Paths: []string{""}},
			[]string{`routes[0].paths[0]: "" is empty; write "/" to match every path`}},
		{"exact without slash", Spec{Paths: []string{"=users"}},
			[]string{`routes[0].paths[0]: "=users" is an exact path and must start with "=/", like "=/users"`}},
		{"exact with params", Spec{Paths: []string{"=/users/{id}"}},
			[]string{`routes[0].paths[0]: "=/users/{id}": an exact path cannot have parameters; remove the "=" to capture them ("/users/{id}")`}},
		{"unclosed brace", Spec{Paths: []string{"/users/{id"}},
			[]string{`routes[0].paths[0]: "/users/{id" has an unbalanced "{" or "}"; write a parameter as "{name}"`}},
		{"brace across segments", Spec{Paths: []string{"/{a/b}"}},
			[]string{`routes[0].paths[0]: "/{a/b}" has an unbalanced "{" or "}"; write a parameter as "{name}"`}},
		{"reversed braces", Spec{Paths: []string{"/}a{"}},
			[]string{`routes[0].paths[0]: "/}a{" has an unbalanced "{" or "}"; write a parameter as "{name}"`}},
		{"partial segment", Spec{Paths: []string{"/users/x{id}"}},
			[]string{`routes[0].paths[0]: "/users/x{id}" has "x{id}": a parameter must be a whole segment, like "/users/{id}"`}},
		{"two params in a segment", Spec{Paths: []string{"/{a}{b}"}},
			[]string{`routes[0].paths[0]: "/{a}{b}" has "{a}{b}": a parameter must be a whole segment, like "/users/{id}"`}},
		{"empty param name", Spec{Paths: []string{"/users/{}"}},
			[]string{`routes[0].paths[0]: "/users/{}" has the invalid parameter name ""; use letters, digits and "_", not starting with a digit`}},
		{"bad param name", Spec{Paths: []string{"/users/{user-id}"}},
			[]string{`routes[0].paths[0]: "/users/{user-id}" has the invalid parameter name "user-id"; use letters, digits and "_", not starting with a digit`}},
		{"param name with digit first", Spec{Paths: []string{"/{1d}"}},
			[]string{`routes[0].paths[0]: "/{1d}" has the invalid parameter name "1d"; use letters, digits and "_", not starting with a digit`}},
		{"duplicate param", Spec{Paths: []string{"/a/{id}/b/{id}"}},
			[]string{`routes[0].paths[0]: "/a/{id}/b/{id}" uses the parameter name "id" twice; give each parameter its own name`}},
		{"too many params", Spec{Paths: []string{"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}/{q}"}},
			[]string{`routes[0].paths[0]: "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}/{q}" has 17 parameters; at most 16 are allowed`}},
		{"too many segments", Spec{Paths: []string{strings.Repeat("/a", 65)}},
			[]string{fmt.Sprintf(`routes[0].paths[0]: %q has 65 segments; at most 64 are allowed`, strings.Repeat("/a", 65))}},
		{"too many param segments", Spec{Paths: []string{strings.Repeat("/a", 64) + "/{x}"}},
			[]string{fmt.Sprintf(`routes[0].paths[0]: %q has 65 segments; at most 64 are allowed`, strings.Repeat("/a", 64)+"/{x}")}},
		{"query", Spec{Paths: []string{"/users?x=1"}},
			[]string{`routes[0].paths[0]: "/users?x=1" contains "?"; a path pattern matches the path only, not the query string`}},
		{"fragment", Spec{Paths: []string{"=/a#b"}},
			[]string{`routes[0].paths[0]: "=/a#b" contains "#"; clients never send the fragment`}},
		{"double slash", Spec{Paths: []string{"/a//b"}},
			[]string{`routes[0].paths[0]: "/a//b" contains "//", which a normalized request path never has; write "/a/b"`}},
		{"dot segment", Spec{Paths: []string{"/a/../b"}},
			[]string{`routes[0].paths[0]: "/a/../b" contains a "." or ".." segment, which a normalized request path never has; write the resolved path`}},
		{"control character", Spec{Paths: []string{"/a\nb"}},
			[]string{`routes[0].paths[0]: "/a\nb" contains a control character; remove it`}},
		{"empty regex", Spec{Paths: []string{"~"}},
			[]string{`routes[0].paths[0]: "~" has no regular expression after "~"; write one, like "~^/v[0-9]+/"`}},
		{"bad regex", Spec{Paths: []string{"~^/v(1"}},
			[]string{"routes[0].paths[0]: \"~^/v(1\" is not a valid regular expression (error parsing regexp: missing closing ): `^/v(1`); fix the expression after \"~\" (Go RE2 syntax)"}},
		{"duplicate group", Spec{Paths: []string{"~^/(?P<id>a)/(?P<id>b)"}},
			[]string{`routes[0].paths[0]: "~^/(?P<id>a)/(?P<id>b)" names the group "id" twice; give each named group its own name`}},
		{"too many groups", Spec{Paths: []string{"~" + groups(17)}},
			[]string{fmt.Sprintf(`routes[0].paths[0]: %q has 17 named groups; at most 16 are allowed`, "~"+groups(17))}},
		{"empty host", Spec{Hosts: []string{""}},
			[]string{`routes[0].hosts[0]: "" is empty; remove it or write a host name like "api.example.com"`}},
		{"star host", Spec{Hosts: []string{"*"}},
			[]string{`routes[0].hosts[0]: "*" matches every host; leave hosts empty instead`}},
		{"url host", Spec{Hosts: []string{"https://api.example.com"}},
			[]string{`routes[0].hosts[0]: "https://api.example.com" is not a host name; write only the host, like "api.example.com"`}},
		{"host with port", Spec{Hosts: []string{"api.example.com:8080"}},
			[]string{`routes[0].hosts[0]: "api.example.com:8080" has a port; write the host without it ("api.example.com"), a route matches every port`}},
		{"bare IPv6", Spec{Hosts: []string{"::1"}},
			[]string{`routes[0].hosts[0]: "::1" looks like an IPv6 address; write it in brackets, like "[::1]"`}},
		{"bad IPv6", Spec{Hosts: []string{"[::g]"}},
			[]string{`routes[0].hosts[0]: "[::g]" is not a valid IPv6 address in brackets, like "[2001:db8::1]"`}},
		{"IPv6 with port", Spec{Hosts: []string{"[::1]:80"}},
			[]string{`routes[0].hosts[0]: "[::1]:80" has a port or extra text after "]"; write the host without it ("[::1]"), a route matches every port`}},
		{"unclosed bracket", Spec{Hosts: []string{"[::1"}},
			[]string{`routes[0].hosts[0]: "[::1" has an unclosed "["; write an IPv6 address as "[::1]"`}},
		{"inner wildcard", Spec{Hosts: []string{"api.*.example.com"}},
			[]string{`routes[0].hosts[0]: "api.*.example.com" has a "*" that is not a leading "*."; a wildcard is written like "*.example.com"`}},
		{"partial wildcard", Spec{Hosts: []string{"*api.example.com"}},
			[]string{`routes[0].hosts[0]: "*api.example.com" has a "*" that is not a leading "*."; a wildcard is written like "*.example.com"`}},
		{"invalid host character", Spec{Hosts: []string{"exa mple.com"}},
			[]string{`routes[0].hosts[0]: "exa mple.com" has the invalid character ' '; a host name has only letters, digits, "-", "_" and "."`}},
		{"empty label", Spec{Hosts: []string{"a..example.com"}},
			[]string{`routes[0].hosts[0]: "a..example.com" has an empty label; remove the extra "."`}},
		{"long label", Spec{Hosts: []string{long + ".com"}},
			[]string{fmt.Sprintf(`routes[0].hosts[0]: %q has a label longer than 63 characters (RFC 1035 §2.3.4)`, long+".com")}},
		{"empty method", Spec{Methods: []string{""}},
			[]string{`routes[0].methods[0]: "" is empty; remove it or write a method like "GET"`}},
		{"star method", Spec{Methods: []string{"*"}},
			[]string{`routes[0].methods[0]: "*" is not a method; leave methods empty to allow every method`}},
		{"bad method", Spec{Methods: []string{"GET", "GE T"}},
			[]string{`routes[0].methods[1]: "GE T" has the invalid character ' '; a method is a token like "GET" or "PURGE" (RFC 9110 §9.1)`}},
		{"empty header name", Spec{Headers: map[string]string{"": "x"}},
			[]string{`routes[0].headers[""]: the header name is empty; write a name like "X-Version"`}},
		{"bad header name", Spec{Headers: map[string]string{"X Version": "2"}},
			[]string{`routes[0].headers["X Version"]: "X Version" is not a valid header name (invalid character ' '); a name is a token like "X-Version" (RFC 9110 §5.1)`}},
		{"empty header value", Spec{Headers: map[string]string{"X-Version": ""}},
			[]string{`routes[0].headers["X-Version"]: the value is empty; a header condition needs the exact non-empty value to match`}},
		{"header value with CR", Spec{Headers: map[string]string{"X-Version": "2\r"}},
			[]string{`routes[0].headers["X-Version"]: the value "2\r" contains a control character, which a header value cannot carry (RFC 9110 §5.5)`}},
		{"duplicate header", Spec{Headers: map[string]string{"X-Version": "2", "x-version": "3"}},
			[]string{`routes[0].headers["x-version"]: "x-version" is the same header as "X-Version" (names are case-insensitive); keep one`}},
		{"every error is reported", Spec{
			Hosts:   []string{"ok.example.com", "bad host", "*"},
			Paths:   []string{"/ok", "nope", "/{x", "~("},
			Methods: []string{"GET", "G(T"},
			Headers: map[string]string{"X-A": ""},
		}, []string{
			`routes[0].hosts[1]: "bad host" has the invalid character ' '; a host name has only letters, digits, "-", "_" and "."`,
			`routes[0].hosts[2]: "*" matches every host; leave hosts empty instead`,
			`routes[0].paths[1]: "nope" must start with "/", "=/" or "~"`,
			`routes[0].paths[2]: "/{x" has an unbalanced "{" or "}"; write a parameter as "{name}"`,
			"routes[0].paths[3]: \"~(\" is not a valid regular expression (error parsing regexp: missing closing ): `(`); fix the expression after \"~\" (Go RE2 syntax)",
			`routes[0].methods[1]: "G(T" has the invalid character '('; a method is a token like "GET" or "PURGE" (RFC 9110 §9.1)`,
			`routes[0].headers["X-A"]: the value is empty; a header condition needs the exact non-empty value to match`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, errs := Compile([]Spec{tt.spec})
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
			if r != nil {
				t.Errorf("Compile returned a router along with errors")
			}
		})
	}
}

func groups(n int) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "/(?P<g%d>[a-z]+)", i)
	}
	return b.String()
}

func TestCompileErrorsAcrossRoutes(t *testing.T) {
	_, errs := Compile([]Spec{
		{Paths: []string{"/ok"}},
		{Paths: []string{"bad"}},
		{Paths: []string{"/ok"}},
		{Hosts: []string{"a:1"}},
	})
	want := []RouteError{
		{Route: 1, Field: "paths[0]", Msg: `"bad" must start with "/", "=/" or "~"`},
		{Route: 3, Field: "hosts[0]", Msg: `"a:1" has a port; write the host without it ("a"), a route matches every port`},
	}
	if fmt.Sprint(errs) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", errs, want)
	}
}

func TestCompileTooManyMethods(t *testing.T) {
	var specs []Spec
	for i := 0; i < 65; i++ {
		specs = append(specs, Spec{Paths: []string{"/"}, Methods: []string{fmt.Sprintf("M%02d", i)}})
	}
	_, errs := Compile(specs)
	want := `routes[64].methods[0]: "M64" is one method too many: all routes together may use at most 64 distinct methods`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("got %v, want %s", errs, want)
	}
	if _, errs := Compile(specs[:64]); errs != nil {
		t.Errorf("64 methods refused: %v", errs)
	}
}

// Valid specs compile, in the forms the doc promises to accept.
func TestCompileValid(t *testing.T) {
	valid := []Spec{
		{},
		{Paths: []string{"/"}},
		{Paths: []string{"=/"}},
		{Paths: []string{"/users", "=/users", "/users/", "/users/{id}", "/users/{id}/", "~^/v[0-9]+/"}},
		{Paths: []string{"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}"}},
		{Paths: []string{strings.Repeat("/a", 64)}},
		{Paths: []string{"/caf\u00e9", "/with space", "/100%"}},
		{Paths: []string{"~(?i)^/Users/(?P<id>[0-9]+)$", "~" + groups(16)}},
		{Hosts: []string{"API.Example.COM", "example.com.", "*.example.org", "*.Sub.Example.ORG", "127.0.0.1", "[2001:DB8::1]", "under_score.test", "localhost"}},
		{Methods: []string{"get", "Post", "PURGE", "M-SEARCH", "GET"}},
		{Headers: map[string]string{"x-version": "2", "Accept": "application/json; q=1", "X-Tab": "a\tb"}},
	}
	if _, errs := Compile(valid); errs != nil {
		t.Fatalf("valid specs refused: %v", errs)
	}
	if r, errs := Compile(nil); errs != nil || r == nil {
		t.Fatalf("Compile(nil) = %v, %v; want an empty router", r, errs)
	}
}
