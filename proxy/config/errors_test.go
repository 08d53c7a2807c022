package config

import "testing"

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "w.yaml", Place: "routes[2].plugin", Msg: "m"}, "w.yaml: routes[2].plugin: m"},
		{Error{Place: "listen", Msg: "m"}, "listen: m"},
		{Error{File: "w.yaml", Msg: "m"}, "w.yaml: m"},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
	l := ErrorList{{File: "f", Place: "a", Msg: "x"}, {File: "f", Place: "b", Msg: "y"}}
	if l.Error() != "f: a: x\nf: b: y" || len(l.Lines()) != 2 || l.Lines()[1] != "f: b: y" {
		t.Errorf("list %q %q", l.Error(), l.Lines())
	}
}

func TestPlaces(t *testing.T) {
	cases := []struct{ got, want string }{
		{key("", "routes"), "routes"},
		{key("routes[0]", "name"), "routes[0].name"},
		{key("headers", "X-Version"), "headers.X-Version"},
		{key("headers", "a.b"), `headers["a.b"]`},
		{key("m", ""), `m[""]`},
		{key("", "a b"), `["a b"]`},
		{index("routes", 12), "routes[12]"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q want %q", tc.got, tc.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	known := []string{"listen", "plugins", "rate_limit", "cors", "services"}
	cases := map[string]string{
		"plugin":     ` (did you mean "plugins"?)`,
		"rate_limt":  ` (did you mean "rate_limit"?)`,
		"ratelimit":  ` (did you mean "rate_limit"?)`,
		"lsiten":     ` (did you mean "listen"?)`, // transposition
		"LISTEN":     ` (did you mean "listen"?)`,
		"service":    ` (did you mean "services"?)`,
		"cros":       ` (did you mean "cors"?)`,
		"foo":        "",
		"x":          "",
		"frobnicate": "",
	}
	for in, want := range cases {
		if got := didYouMean(in, known); got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", in, got, want)
		}
	}
	if didYouMean("a", nil) != "" {
		t.Error("suggestion from nothing")
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"ab", "ba", 1}, {"rate_limt", "rate_limit", 1}, {"same", "same", 0},
	}
	for _, tc := range cases {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
