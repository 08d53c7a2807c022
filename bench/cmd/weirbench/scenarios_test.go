package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const goodScenario = `
name: weir+x
about: test
headers: {X-API-Key: k}
loads: [50]
weir:
  listen: "{{LISTEN}}"
  admin: {listen: "{{ADMIN}}"}
  services:
    - name: b
      targets: [{url: "http://{{BACKEND}}"}]
  routes:
    - {name: all, paths: ["/"], service: b}
`

func TestParseScenario(t *testing.T) {
	base := func(extra string) string {
		return "name: s\n" + extra + "weir: {listen: \"{{LISTEN}}\", services: [{name: b, targets: [{url: \"http://{{BACKEND}}\"}]}]}\n"
	}
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, s *scenario)
		err   string
	}{
		{name: "good", in: goodScenario, check: func(t *testing.T, s *scenario) {
			if s.Name != "weir+x" || s.Processes != 1 || s.GOMAXPROCS != 1 || len(s.Bodies) != 1 || s.Bodies[0] != "64B" {
				t.Errorf("defaults: %+v", s)
			}
			if s.needsRedis {
				t.Error("needsRedis without {{REDIS}}")
			}
			if s.Headers["X-API-Key"] != "k" || len(s.Loads) != 1 {
				t.Errorf("headers %v loads %v", s.Headers, s.Loads)
			}
		}},
		{name: "redis and processes", in: "name: r\nprocesses: 2\ngomaxprocs: 2\nbodies: [64B, 1KiB]\n" +
			"accuracy: {path: /l, offered_rps: 100, limit_rps: 10, burst: 5}\n" +
			"weir: {listen: \"{{LISTEN}}\", redis: {addrs: [\"{{REDIS}}\"]}, services: [{name: b, targets: [{url: \"http://{{BACKEND}}\"}]}]}\n",
			check: func(t *testing.T, s *scenario) {
				if !s.needsRedis || s.Processes != 2 || s.GOMAXPROCS != 2 || len(s.Bodies) != 2 || s.Accuracy == nil {
					t.Errorf("got %+v", s)
				}
			}},
		{name: "not yaml", in: "name: [", err: "f.yaml: yaml:"},
		{name: "unknown key", in: base("colour: red\n"), err: "field colour not found"},
		{name: "no name", in: "weir: {listen: x}\n", err: "f.yaml: name is required, e.g. name: weir+key_auth"},
		{name: "name with space", in: base("")[len("name: s\n"):] + "name: a b\n", err: `f.yaml: name "a b" must not contain spaces or '/'`},
		{name: "no weir", in: "name: s\n", err: "f.yaml: weir is required: the gateway config, with {{LISTEN}} and {{BACKEND}}"},
		{name: "weir not a mapping", in: "name: s\nweir: [1]\n", err: "f.yaml: weir must be a mapping (the gateway config)"},
		{name: "bad body", in: base("bodies: [2KiB]\n"), err: `f.yaml: bodies: "2KiB" is not a body; use 64B, 1KiB or POST1KiB`},
		{name: "bad prefix", in: base("prefix: api\n"), err: `f.yaml: prefix must start with '/', got "api"`},
		{name: "bad load", in: base("loads: [0]\n"), err: "f.yaml: loads: 0 is not a percentage between 1 and 200"},
		{name: "bad processes", in: base("processes: 9\n"), err: "f.yaml: processes must be between 1 and 8, got 9"},
		{name: "bad gomaxprocs", in: base("gomaxprocs: -1\n"), err: "f.yaml: gomaxprocs must be >= 1, got -1"},
		{name: "accuracy path", in: base("accuracy: {path: l, offered_rps: 2, limit_rps: 1}\n"), err: `f.yaml: accuracy.path must start with '/', got "l"`},
		{name: "accuracy offered", in: base("accuracy: {path: /l, limit_rps: 1}\n"), err: "f.yaml: accuracy.offered_rps must be > 0"},
		{name: "accuracy limit", in: base("accuracy: {path: /l, offered_rps: 2}\n"), err: "f.yaml: accuracy.limit_rps must be > 0"},
		{name: "accuracy nothing limited", in: base("accuracy: {path: /l, offered_rps: 2, limit_rps: 2}\n"), err: "f.yaml: accuracy.limit_rps must be below offered_rps, or nothing is limited"},
		{name: "accuracy burst", in: base("accuracy: {path: /l, offered_rps: 2, limit_rps: 1, burst: -1}\n"), err: "f.yaml: accuracy.burst must be >= 0"},
		{name: "negative target", in: base("targets: {rps_ratio: -1}\n"), err: "f.yaml: targets must not be negative"},
		{name: "unknown placeholder", in: "name: s\nweir: {listen: \"{{LISTEN}}\", x: \"{{BACKENDS}}\", s: \"{{BACKEND}}\"}\n", err: "f.yaml: weir: unknown placeholder {{BACKENDS}}; use {{LISTEN}}, {{ADMIN}}, {{BACKEND}}, {{REDIS}}, {{WASM}} or {{SCENARIOS}}"},
		{name: "fixed listen", in: "name: s\nweir: {listen: \":8080\", s: \"{{BACKEND}}\"}\n", err: "f.yaml: weir: listen must be {{LISTEN}}"},
		{name: "no backend", in: "name: s\nweir: {listen: \"{{LISTEN}}\"}\n", err: "f.yaml: weir: no service points at {{BACKEND}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseScenario("f.yaml", []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestScenarioRender(t *testing.T) {
	s, err := parseScenario("f.yaml", []byte(goodScenario))
	if err != nil {
		t.Fatal(err)
	}
	out := s.render("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4")
	if placeholderRE.MatchString(out) {
		t.Fatalf("placeholders left:\n%s", out)
	}
	var cfg struct {
		Listen   string                  `yaml:"listen"`
		Admin    struct{ Listen string } `yaml:"admin"`
		Services []struct {
			Targets []struct{ URL string } `yaml:"targets"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("rendered config is not YAML: %v\n%s", err, out)
	}
	if cfg.Listen != "127.0.0.1:1" || cfg.Admin.Listen != "127.0.0.1:2" || cfg.Services[0].Targets[0].URL != "http://127.0.0.1:3" {
		t.Errorf("rendered %+v", cfg)
	}
}

// TestShippedScenariosParse keeps bench/scenarios valid as far as the
// harness is concerned (whether weir accepts them is checked at run time,
// and a refusal is reported as a skip).
func TestShippedScenariosParse(t *testing.T) {
	list, err := loadScenarios(filepath.Join("..", "..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range list {
		names[s.Name] = true
	}
	for _, want := range []string{"weir", "weir+size_limit", "weir+chain", "weir-x2+rate_limit_redis"} {
		if !names[want] {
			t.Errorf("scenario %q missing (have %v)", want, names)
		}
	}
	if list[0].Name != "weir" {
		t.Errorf("plain weir must come first, got %s", list[0].Name)
	}
}

func TestLoadScenariosErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadScenarios(dir); err == nil || !strings.Contains(err.Error(), "no *.yaml in") {
		t.Errorf("empty dir: %v", err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", goodScenario)
	write("b.yaml", goodScenario)
	write("c.yaml", "name: c\n")
	_, err := loadScenarios(dir)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`b.yaml: name "weir+x" is already used by a.yaml`, "c.yaml: weir is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
}
