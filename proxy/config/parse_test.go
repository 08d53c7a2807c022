package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFormats(t *testing.T) {
	const yamlDoc = "listen: \":9000\"\nservices: [{name: a}]\n"
	const jsonDoc = `{"listen": ":9000", "services": [{"name": "a"}]}`
	cases := []struct {
		name, file, doc string
	}{
		{"yaml", "w.yaml", yamlDoc},
		{"yml", "w.YML", yamlDoc},
		{"json", "w.json", jsonDoc},
		{"json sniffed", "w.conf", jsonDoc},
		{"json sniffed, no name", "", "\n  " + jsonDoc},
		{"yaml sniffed", "w.conf", yamlDoc},
		{"yaml flow mapping sniffed", "-", `{listen: ":9000", services: [{name: a}]}`},
		{"json in a .yaml file", "w.yaml", jsonDoc},
		{"byte order mark", "w.yaml", "\xef\xbb\xbf" + yamlDoc},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseEnv(tc.file, []byte(tc.doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Listen) != 1 || c.Listen[0].Address != ":9000" || len(c.Services) != 1 || c.Services[0].Name != "a" {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

// A .json file is read as JSON even if YAML would accept it, so that its
// errors are JSON errors at a line and column.
func TestParseJSONExtensionIsStrict(t *testing.T) {
	_, err := ParseEnv("w.json", []byte("listen: \":80\"\n"), nil)
	if got := lines(t, err); len(got) != 1 || !strings.HasPrefix(got[0], "w.json: line 1, column 1: invalid JSON:") {
		t.Fatalf("got %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	deepYAML := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	deepJSON := `{"listen": ` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "}"
	cases := []struct {
		name string
		file string // default t.yaml
		doc  string
		want []string
	}{
		{"unknown top-level key with suggestion", "", "lisen: \":80\"\n",
			[]string{`lisen: unknown key "lisen" (did you mean "listen"?)`}},
		{"unknown key, case", "", "Listen: \":80\"\n",
			[]string{`Listen: unknown key "Listen" (did you mean "listen"?)`}},
		{"unknown key without suggestion", "", "frobnicate: 1\n",
			[]string{`frobnicate: unknown key "frobnicate"`}},
		{"unknown nested key", "", "routes: [{name: a}, {name: b}, {name: c, plugin: []}]\n",
			[]string{`routes[2].plugin: unknown key "plugin" (did you mean "plugins"?)`}},
		{"unknown key quoted place", "", "server: {\"a.b\": 1}\n",
			[]string{`server["a.b"]: unknown key "a.b"`}},
		{"integer from a word", "", "services: [{name: a, retries: two}]\n",
			[]string{`services[0].retries: expected an integer, got "two"`}},
		{"integer from a float", "", "server: {max_conns: 1.5}\n",
			[]string{`server.max_conns: expected an integer, got 1.5`}},
		{"integer overflow", "", "server: {max_body_bytes: 99999999999999999999}\n",
			[]string{`server.max_body_bytes: expected an integer, got 1e+20`}},
		{"integer overflow json", "t.json", `{"server": {"max_conns": 99999999999999999999}}`,
			[]string{`server.max_conns: 99999999999999999999 is out of range for an integer`}},
		{"float out of range json", "t.json", `{"services": [{"circuit_breaker": {"failure_ratio": 1e999}}]}`,
			[]string{`services[0].circuit_breaker.failure_ratio: 1e999 is out of range for a number`}},
		{"bool", "", "server: {latency_headers: yes}\n",
			[]string{`server.latency_headers: expected true or false, got "yes"`}},
		{"string from a number", "", "routes: [{name: 7}]\n",
			[]string{`routes[0].name: expected a string, got 7: quote it ("7")`}},
		{"string from a list", "", "routes: [{name: [a]}]\n",
			[]string{`routes[0].name: expected a string, got a list`}},
		{"duration without unit", "", "server: {read_timeout: 30}\n",
			[]string{`server.read_timeout: expected a duration such as "1s" or "250ms", got 30`}},
		{"duration garbage", "", "server: {read_timeout: soon}\n",
			[]string{`server.read_timeout: invalid duration "soon": use a number with a unit such as "1s" or "250ms"`}},
		{"negative duration", "", "server: {read_timeout: -1s}\n",
			[]string{`server.read_timeout: duration "-1s" is negative: use a positive duration such as "1s"`}},
		{"string list from a number", "", "listen: 8080\n",
			[]string{`listen: expected an address such as ":8080" or an object {address, tls}, got 8080`}},
		{"listen item, unknown key", "", "listen: [\":80\", {a: b}]\n",
			[]string{`listen[1].a: unknown key "a"`}},
		{"listen item, a list", "", "listen: [\":80\", [a]]\n",
			[]string{`listen[1]: expected an address such as ":8080" or an object {address, tls}, got a list`}},
		{"listen tls, typo", "", "listen: {address: \":443\", tls: {certificate: []}}\n",
			[]string{`listen.tls.certificate: unknown key "certificate" (did you mean "certificates"?)`}},
		{"list from a mapping", "", "plugins: {name: cors}\n",
			[]string{`plugins: expected a list, got a mapping`}},
		{"mapping from a string", "", "admin: on\n",
			[]string{`admin: expected a mapping, got "on"`}},
		{"top-level list", "", "- a\n",
			[]string{`top level: expected a mapping, got a list`}},
		{"top-level scalar", "", "hello\n",
			[]string{`top level: expected a mapping, got "hello"`}},
		{"several errors at once", "", "lisen: 1\nserver: {max_conns: x}\nroutes: [{nme: a}]\n",
			[]string{
				`lisen: unknown key "lisen" (did you mean "listen"?)`,
				`server.max_conns: expected an integer, got "x"`,
				`routes[0].nme: unknown key "nme" (did you mean "name"?)`,
			}},
		{"empty", "", "", []string{"top level: the document is empty; a config needs at least `listen`"}},
		{"comments only", "", "# nothing\n", []string{"top level: the document is empty; a config needs at least `listen`"}},
		{"null document", "", "~\n", []string{"top level: the document is empty; a config needs at least `listen`"}},
		{"empty json", "t.json", "  ", []string{"top level: the document is empty; a config needs at least `listen`"}},
		{"yaml syntax", "", "listen: [\n", []string{`line 1: invalid YAML: did not find expected node content`}},
		{"yaml tab indentation", "", "server:\n\tmax_conns: 1\n", []string{`line 2: invalid YAML: found character that cannot start any token`}},
		{"two documents", "", "listen: \":80\"\n---\nlisten: \":81\"\n",
			[]string{`line 2: a second YAML document (after ---); a config file holds one document`}},
		{"duplicate key yaml", "", "listen: \":80\"\nlisten: \":81\"\nfoo: 1\n",
			[]string{`listen: key "listen" appears twice in one mapping (line 2); keep one`, `foo: unknown key "foo"`}},
		{"duplicate key json", "t.json", `{"listen": ":80", "listen": ":81"}`,
			[]string{`listen: key "listen" appears twice in one mapping; keep one`}},
		{"json syntax", "t.json", "{\n  \"listen\": \":80\",\n}\n",
			[]string{`line 3, column 1: invalid JSON: invalid character '}' looking for beginning of object key string`}},
		{"json truncated", "t.json", "{\"listen\": [",
			[]string{`line 1, column 13: invalid JSON: unexpected end of JSON input`}},
		{"json trailing data", "t.json", `{"listen": ":80"} {}`,
			[]string{`line 1, column 19: invalid JSON: invalid character '{' after top-level value`}},
		{"json top-level list", "t.json", `[1]`,
			[]string{`top level: expected a mapping, got a list`}},
		{"alias cycle", "", "listen: &l [\":80\", *l]\n",
			[]string{`listen[1][1]: alias *l at line 1 is inside its own anchor; YAML aliases must not be recursive`}},
		{"merge of a scalar", "", "server: {<<: 1}\n",
			[]string{`server: the merge key << at line 1 needs a mapping or a list of mappings, such as <<: *defaults`}},
		{"merge list of scalars", "", "a: &a {max_conns: 1}\nserver: {<<: [*a, 2]}\n",
			[]string{`server: the merge key << at line 2 needs a mapping or a list of mappings, such as <<: *defaults`}},
		{"custom tag", "", "listen: !env PORT\n",
			[]string{`listen: unsupported YAML tag !env at line 1; remove it`}},
		{"custom tag on a mapping", "", "server: !!set {a}\n",
			[]string{`server: unsupported YAML tag !!set at line 1; remove it`}},
		{"binary", "", "listen: !!binary aGVsbG8=\n",
			[]string{`listen: !!binary values are not supported; write the value as a string (base64 if need be)`}},
		{"bad explicit int", "", "server: {max_conns: !!int abc}\n",
			[]string{"server.max_conns: cannot decode !!str `abc` as a !!int"}},
		{"infinity", "", "plugins: [{name: a, config: {x: .inf}}]\n",
			[]string{`plugins[0].config.x: not a finite number; JSON, the canonical form, has no .nan or .inf`}},
		{"mapping key is a list", "", "? [a]\n: b\n",
			[]string{`top level: a key at line 1 is a list or mapping; keys must be plain strings`}},
		{"too deep yaml", "", "listen: " + deepYAML + "\n",
			[]string{`listen` + strings.Repeat("[0]", 200) + `: nested more than 200 levels deep (line 1); flatten the document`}},
		{"too deep json", "t.json", deepJSON,
			[]string{`listen` + strings.Repeat("[0]", 200) + `: nested more than 200 levels deep; flatten the document`}},
		{"too large", "", "listen: \"" + strings.Repeat("x", MaxDocumentBytes) + "\"\n",
			[]string{`top level: the file is larger than 256 MiB; a config this size is a mistake`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "t.yaml"
			}
			_, err := ParseEnv(file, []byte(tc.doc), testEnv)
			got := lines(t, err)
			for i := range got {
				got[i] = strings.TrimPrefix(got[i], file+": ")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors differ\ngot:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

// "Billion laughs": nine levels of ten aliases would be 10^9 values.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(`a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for i := 1; i < 9; i++ {
		prev := "*a" + string(rune('0'+i-1))
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(prev+",", 9) + prev + "]\n")
	}
	_, err := ParseEnv("t.yaml", []byte(b.String()), nil)
	check(t, err, []string{"top level: YAML aliases expand the document by more than 524288 values or 33554432 bytes of text; write the repeated blocks out or remove repetition"})
}

func TestParseNull(t *testing.T) {
	// null reads as "not set" everywhere, as in encoding/json.
	c := mustParse(t, "admin:\nredis: ~\nserver:\nservices: [{name: a, retries: null, targets: [{url: null}]}]\n")
	if c.Admin != nil || c.Redis != nil || c.Services[0].Retries != nil || c.Services[0].Targets[0].URL != "" {
		t.Fatalf("got %+v", c)
	}
}

func TestParseYAMLFeatures(t *testing.T) {
	c := mustParse(t, `
services:
  - &svc
    name: a
    timeout: &t 5s
    retries: 0x3
    targets: [{url: "http://h:1", weight: 0o17}]
  - <<: *svc
    name: b
  - <<: [{name: ignored, balancer: random}, *svc]
    name: c
    connect_timeout: *t
routes:
  - name: r
    service: a
    plugins:
      - name: test_plugin
        config:
          z: 1
          a: 2001-12-14
          m: 0x10
          s: 'single'
          f: 1.50
          folded: >
            two
            lines
          list: [true, ~, "x"]
`)
	s := c.Services
	if len(s) != 3 || s[1].Name != "b" || s[1].Timeout.D().String() != "5s" || *s[1].Retries != 3 || *s[1].Targets[0].Weight != 15 {
		t.Fatalf("merge/alias: %+v", s)
	}
	if s[2].Name != "c" || s[2].Balancer != "random" || s[2].ConnectTimeout.D().String() != "5s" || *s[2].Retries != 3 {
		t.Fatalf("merge list: %+v", s[2])
	}
	// The raw config keeps the order of keys; YAML numbers become JSON
	// numbers, timestamps stay text.
	want := `{"z":1,"a":"2001-12-14","m":16,"s":"single","f":1.5,"folded":"two lines\n","list":[true,null,"x"]}`
	if got := string(c.Routes[0].Plugins[0].Config); got != want {
		t.Fatalf("raw config\ngot  %s\nwant %s", got, want)
	}
}

func TestParseRawJSONVerbatim(t *testing.T) {
	c, err := ParseEnv("t.json", []byte(`{"plugins": [{"name": "x", "config": {"b": 1e3, "a": "<&>", "n": -0.5, "u": "\u00e9"}}],
		"consumers": [{"name": "c", "credentials": {"key_auth": [{"key": "k"}]}}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c.Plugins[0].Config), `{"b":1e3,"a":"<&>","n":-0.5,"u":"é"}`; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if got := string(c.Consumers[0].Credentials.Of("key_auth")[0]); got != `{"key":"k"}` {
		t.Fatalf("credential %s", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(good, []byte("listen: \":80\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil || c.Listen[0].Address != ":80" {
		t.Fatalf("%v %+v", err, c)
	}

	missing := filepath.Join(dir, "nope.yaml")
	_, err = Load(missing)
	if got := lines(t, err); len(got) != 1 || got[0] != missing+": top level: cannot read the file: no such file or directory" {
		t.Fatalf("got %q", got)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxDocumentBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	if got := lines(t, err); len(got) != 1 || got[0] != big+": top level: the file is larger than 256 MiB; a config this size is a mistake" {
		t.Fatalf("got %q", got)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"lisen": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if got := lines(t, err); len(got) != 1 || got[0] != bad+`: lisen: unknown key "lisen" (did you mean "listen"?)` {
		t.Fatalf("got %q", got)
	}
}

// Every key of the schema is accepted by the schema check and by the
// strict decoder: the two agree.
func TestSchemaCheckAgreesWithDecoder(t *testing.T) {
	c := filled()
	data, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseEnv("all.json", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(back)
	if string(a) != string(b) {
		t.Fatalf("round trip differs\n%s\n%s", a, b)
	}
}
