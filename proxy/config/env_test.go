package config

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	cases := []struct {
		in, out string
		used    bool
		err     string
	}{
		{in: "plain", out: "plain"},
		{in: "", out: ""},
		{in: "${PORT}", out: "9001", used: true},
		{in: "http://h:${PORT}/x", out: "http://h:9001/x", used: true},
		{in: "${PORT}${RETRIES}", out: "90013", used: true},
		{in: "${NOPE:-def}", out: "def", used: true},
		{in: "${EMPTY:-def}", out: "def", used: true},
		{in: "${EMPTY}", out: "", used: true},
		{in: "${NOPE:-}", out: "", used: true},
		{in: "${PORT:-x}", out: "9001", used: true},
		{in: "${NOPE:-a:-b}", out: "a:-b", used: true},
		{in: "${NOPE:-{x}", out: "{x", used: true},
		{in: "$$", out: "$"},
		{in: "$${PORT}", out: "${PORT}"},
		{in: "$$$${PORT}", out: "$${PORT}"},
		{in: "$$${PORT}", out: "$9001", used: true},
		{in: "~^/v1/users$", out: "~^/v1/users$"},
		{in: "$PORT", out: "$PORT"},
		{in: "a$", out: "a$"},
		{in: "$", out: "$"},
		{in: "${DOLLAR}", out: "a$$b", used: true}, // values are not expanded again
		{in: "${NOPE}", err: "environment variable NOPE is not set: set it or give a default with ${NOPE:-value}"},
		{in: "x ${PORT", err: `unterminated "${PORT": close it with } or write $${ for a literal ${`},
		{in: "${" + strings.Repeat("A", 40), err: `unterminated "${AAAAAAAAAAAAAAAAAAAAAAAAAAAA...": close it with } or write $${ for a literal ${`},
		{in: "${}", err: "invalid variable reference ${}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)"},
		{in: "${1A}", err: "invalid variable reference ${1A}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)"},
		{in: "${A-B}", err: "invalid variable reference ${A-B}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)"},
		{in: "${A B}", err: "invalid variable reference ${A B}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)"},
		{in: "${:-x}", err: "invalid variable reference ${:-x}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)"},
	}
	for _, tc := range cases {
		out, used, err := expand(tc.in, testEnv)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("expand(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || out != tc.out || used != tc.used {
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v", tc.in, out, used, err, tc.out, tc.used)
		}
	}
}

func TestParseExpansion(t *testing.T) {
	c := mustParse(t, `
listen: ["${LISTEN:-:8080}", "127.0.0.1:${PORT}"]
admin: {listen: "127.0.0.1:1", token: "${TOKEN}", pprof: "${ON}"}
server:
  max_conns: "${RETRIES}"
  max_body_bytes: "${SPACED}"
  read_timeout: "${RETRIES}s"
  latency_headers: ${ON}
services:
  - name: "${MAP}"
    retries: ${RETRIES}
    circuit_breaker:
      failure_ratio: ${RATIO}
    targets: [{url: "http://h:${PORT}", weight: "${NOPE:-7}"}]
routes:
  - name: "${LIST}"
    headers: {"${PORT}": "$$${PORT}"}
    plugins:
      - name: p
        config:
          plain: ${RETRIES}
          quoted: "${RETRIES}"
          ratio: ${RATIO}
          on: ${ON}
          empty: ${EMPTY}
          list: ${LIST}
          map: ${MAP}
          text: ${TOKEN}
          dollar: a$$b
          nested:
            - ${PORT}
            - "${PORT}"
`)
	if c.Listen[0].Address != ":8080" || c.Listen[1].Address != "127.0.0.1:9001" {
		t.Errorf("listen %q", c.Listen.Addresses())
	}
	if c.Admin.Token != "s3cret" || !c.Admin.Pprof {
		t.Errorf("admin %+v", c.Admin)
	}
	if c.Server.MaxConns != 3 || c.Server.MaxBodyBytes != 7 || c.Server.ReadTimeout.D().String() != "3s" || !c.Server.LatencyHeaders {
		t.Errorf("server %+v", c.Server)
	}
	s := c.Services[0]
	// A variable never adds structure: "{a: b}" and "[1, 2]" stay strings.
	if s.Name != "{a: b}" || *s.Retries != 3 || s.CircuitBreaker.FailureRatio != 0.25 || s.Targets[0].URL != "http://h:9001" || *s.Targets[0].Weight != 7 {
		t.Errorf("service %+v", s)
	}
	r := c.Routes[0]
	if r.Name != "[1, 2]" || r.Headers["${PORT}"] != "$9001" {
		t.Errorf("route %+v (keys are not expanded)", r)
	}
	want := `{"plain":3,"quoted":"3","ratio":0.25,"on":true,"empty":null,"list":"[1, 2]","map":"{a: b}","text":"s3cret","dollar":"a$b","nested":[9001,"9001"]}`
	if got := string(r.Plugins[0].Config); got != want {
		t.Errorf("raw config\ngot  %s\nwant %s", got, want)
	}
}

func TestParseExpansionErrors(t *testing.T) {
	_, err := ParseEnv("t.yaml", []byte(`
admin: {listen: "127.0.0.1:1", token: "${NOPE}"}
server: {max_conns: "${TOKEN}", latency_headers: "${PORT}", read_timeout: "${PORT}"}
services: [{name: "${", retries: "${RETRIES}"}]
plugins: [{name: p, config: {a: [1, {b: "${1}"}]}}]
`), testEnv)
	check(t, err, []string{
		"admin.token: environment variable NOPE is not set: set it or give a default with ${NOPE:-value}",
		`server.max_conns: expected an integer, got "s3cret" (after ${...} expansion)`,
		`server.latency_headers: expected true or false, got "9001" (after ${...} expansion)`,
		`server.read_timeout: invalid duration "9001": use a number with a unit such as "1s" or "250ms"`,
		`services[0].name: unterminated "${": close it with } or write $${ for a literal ${`,
		`plugins[0].config.a[1].b: invalid variable reference ${1}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)`,
	})
}

// A string that merely looks like a number is not one unless it came
// from a variable: `retries: "3"` is a type error, `retries: "${N}"` is not.
func TestParseQuotedNumberIsAString(t *testing.T) {
	_, err := ParseEnv("t.yaml", []byte(`services: [{name: a, retries: "3"}]`), testEnv)
	check(t, err, []string{`services[0].retries: expected an integer, got "3"`})
}

// With a nil lookup, nothing is expanded: canonical documents written by
// Marshal are read back verbatim.
func TestParseNoExpansion(t *testing.T) {
	c, err := ParseEnv("t.json", []byte(`{"admin": {"listen": "127.0.0.1:1", "token": "$${X}${Y}"}, "plugins": [{"name": "p", "config": {"a": "${Z}"}}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Token != "$${X}${Y}" || string(c.Plugins[0].Config) != `{"a":"${Z}"}` {
		t.Fatalf("got %q %s", c.Admin.Token, c.Plugins[0].Config)
	}
}

// Parse reads the process environment.
func TestParseUsesEnvironment(t *testing.T) {
	t.Setenv("WEIR_CONFIG_TEST_PORT", "7001")
	c, err := Parse("t.yaml", []byte(`listen: ":${WEIR_CONFIG_TEST_PORT}"`))
	if err != nil || c.Listen[0].Address != ":7001" {
		t.Fatalf("%v %v", err, c)
	}
}
