package config

import (
	"errors"
	"strings"
	"testing"
)

// TestCheck: Check reports the errors of every stage in one list, in file
// order, without duplicates and without what only follows from a value the
// schema refused.
func TestCheck(t *testing.T) {
	pluginErrs := func(cfg *Config, valid bool) error {
		// A stand-in for the proxy's plugin check: one error per plugin
		// instance of each route, at the proxy's place, and one joined
		// with the validation errors when the config is invalid.
		var list ErrorList
		for i, r := range cfg.Routes {
			for j, p := range r.Plugins {
				list = append(list, &Error{File: "c.yaml", Place: index(key(index("routes", i), "plugins"), j) + " (" + p.Name + ")", Msg: "plugin says no"})
			}
		}
		if len(list) == 0 {
			return nil
		}
		return list
	}
	tests := []struct {
		name  string
		doc   string
		check CheckFunc
		want  []string
	}{
		{"every stage, in file order",
			"listen: \":8080\"\nroutes:\n  - name: r\n    service: nosuch\n    paths: [/r]\n    plugins: [{name: cors}]\nservices:\n  - name: s\n    retries: two\n    targets: [{url: \"ftp://x:1\"}]\n",
			pluginErrs,
			[]string{
				`routes[0].service: no service named "nosuch" (known: s)`,
				`routes[0].plugins[0] (cors): plugin says no`,
				`services[0].retries: expected an integer, got "two"`,
				`services[0].targets[0].url: scheme "ftp" of "ftp://x:1" is not supported: use http or https (HTTP/1.1), h2c or grpc (HTTP/2 cleartext), h2 or grpcs (HTTP/2 over TLS)`,
			}},
		{"a refused value is not reported again as missing",
			"listen: 8080\nservices: [{name: 5, targets: [{url: \"http://a:1\"}]}]\nroutes: [{name: r, service: \"5\", paths: [/]}]\n",
			nil,
			[]string{
				"listen: expected an address such as \":8080\" or an object {address, tls}, got 8080",
				`services[0].name: expected a string, got 5: quote it ("5")`,
			}},
		{"a plugin whose config lost a value is not checked",
			"listen: \":8080\"\nservices: [{name: s, targets: [{url: \"http://a:1\"}]}]\nroutes: [{name: r, service: s, paths: [/], plugins: [{name: cors, config: {a: \"${}\"}}]}]\n",
			pluginErrs,
			[]string{
				"routes[0].plugins[0].config.a: invalid variable reference ${}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)",
			}},
		{"a duplicate key hides nothing",
			"listen: \"8080\"\nlisten: \":9090\"\n",
			nil,
			[]string{
				`listen: key "listen" appears twice in one mapping (line 2); keep one`,
				`listen: "8080" is not host:port: write ":8080" to listen on port 8080 on every interface`,
			}},
		{"a check's plain error is kept, at the top",
			"listen: \":8080\"\nserver: {read_timeout: 5}\n",
			func(*Config, bool) error { return errors.New("the check failed") },
			[]string{
				"the check failed",
				`server.read_timeout: expected a duration such as "1s" or "250ms", got 5`,
			}},
		{"a check's duplicate is dropped",
			"listen: \"8080\"\n",
			func(c *Config, _ bool) error { return Validate(c, "c.yaml") },
			[]string{
				`listen: "8080" is not host:port: write ":8080" to listen on port 8080 on every interface`,
			}},
		{"valid", "listen: \":8080\"\n", pluginErrs, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Check("c.yaml", []byte(tt.doc), testEnv, tt.check)
			var got []string
			if err != nil {
				for _, e := range err.(ErrorList) {
					got = append(got, strings.TrimPrefix(strings.TrimPrefix(e.Error(), "c.yaml: "), TopLevel+": "))
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors\n--- got\n%s\n--- want\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if (c == nil) != (err != nil) {
				t.Fatalf("config %v with error %v", c != nil, err)
			}
		})
	}
}

// TestYAMLErrorLineLargeFile: past maxBisectBytes the line is yaml.v3's
// own, and the message says it is not exact, rather than parsing a large
// document from the network dozens of times.
func TestYAMLErrorLineLargeFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("listen: \":8080\"\nservices:\n")
	for b.Len() <= maxBisectBytes {
		b.WriteString("  - name: s\n    targets: []\n")
	}
	b.WriteString("   bad: x\n")
	_, err := Check("big.yaml", []byte(b.String()), nil, nil)
	want := "big.yaml: line 2: invalid YAML: did not find expected '-' indicator (at or after this line: the file is too large to find the exact line)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}
