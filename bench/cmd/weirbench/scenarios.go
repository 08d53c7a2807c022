package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// scenario is one Weir configuration to measure, read from
// bench/scenarios/*.yaml. Everything but `weir` describes the run; `weir`
// is the gateway config, with placeholders the harness fills in:
//
//	{{LISTEN}}   this process's proxy address (host:port)
//	{{ADMIN}}    this process's admin address
//	{{BACKEND}}  the shared echo backend (host:port)
//	{{REDIS}}    the private redis-server (host:port); using it marks the
//	             scenario as needing Redis
//	{{WASM}}     the directory of the Proxy-Wasm modules the harness
//	             builds (wasm.go: benchWasmModules); using it marks the
//	             scenario as needing them
//	{{SCENARIOS}} the scenarios folder, absolute (for files a scenario
//	             uses, such as a Kong plugin's folder)
type scenario struct {
	File  string `yaml:"-"`
	Name  string `yaml:"name"`
	About string `yaml:"about"`
	// Bodies lists the bodies to measure (bodyKinds): "64B" (GET
	// /static), "1KiB" (GET /static1k) and "POST1KiB" (a 1 KiB request
	// body POSTed to /static). Default: 64B.
	Bodies []string `yaml:"bodies"`
	// Prefix is put before the backend path, for routes that strip it.
	Prefix  string            `yaml:"prefix"`
	Headers map[string]string `yaml:"headers"`
	// Loads are the percentages of nginx's capacity to hold a constant
	// rate at; default: the run's list (25, 50, 75; quick: 50).
	Loads []int `yaml:"loads"`
	// Processes is how many Weir processes share the load (default 1);
	// each gets its own {{LISTEN}} and {{ADMIN}}, all get GOMAXPROCS and
	// the proxy CPUs.
	Processes  int           `yaml:"processes"`
	GOMAXPROCS int           `yaml:"gomaxprocs"`
	Accuracy   *accuracySpec `yaml:"accuracy"`
	// Targets are the goals (bench/README.md) this scenario is checked against.
	Targets    *scenarioTargets `yaml:"targets"`
	Weir       yaml.Node        `yaml:"weir"`
	needsRedis bool
	needsWasm  bool
	wasmDir    string // where {{WASM}} points once built
	rawWeir    string
	dir        string // the folder of the scenario's file, absolute
}

// accuracySpec asks for a rate-limit accuracy check: an open-loop run at
// OfferedRPS on Path, where the config limits to LimitRPS with Burst; the
// 2xx answers are compared with what the limit allows.
type accuracySpec struct {
	Path       string  `yaml:"path"`
	OfferedRPS float64 `yaml:"offered_rps"`
	LimitRPS   float64 `yaml:"limit_rps"`
	Burst      float64 `yaml:"burst"`
}

// scenarioTargets are goals from bench/README.md; a zero field is not checked.
type scenarioTargets struct {
	// RPSRatio is the least max RPS ÷ nginx's max RPS (same body).
	RPSRatio float64 `yaml:"rps_ratio"`
	// CPURatio is the most CPU per request ÷ nginx's, at the reference
	// load.
	CPURatio float64 `yaml:"cpu_ratio"`
	// AddedP99ms is the most p99 may exceed direct's at the reference load.
	AddedP99ms float64 `yaml:"added_p99_ms"`
}

// bodyKind is one body a row measures: the backend path whose answer
// comes back, its size, and whether each request POSTs requestBody.
type bodyKind struct {
	name   string
	path   string
	answer int
	post   bool
}

// bodyKinds are the bodies a run can measure, in report order.
var bodyKinds = []bodyKind{
	{name: "64B", path: "/static", answer: 64},
	{name: "1KiB", path: "/static1k", answer: 1024},
	// A 1 KiB request body and a 64 B answer: the request-body filters'
	// row (weir+wasm_request_body), next to the plain route's.
	{name: "POST1KiB", path: "/static", answer: 64, post: true},
}

// bodyKindOf looks a body name up in bodyKinds.
func bodyKindOf(name string) (bodyKind, bool) {
	for _, k := range bodyKinds {
		if k.name == name {
			return k, true
		}
	}
	return bodyKind{}, false
}

// bodyKindNames lists the names, for error messages: "64B, 1KiB or POST1KiB".
func bodyKindNames() string {
	var names []string
	for _, k := range bodyKinds {
		names = append(names, k.name)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// requestBody is what a POST kind sends: 1 KiB of text lines naming weir,
// which the request-body filter rewrites (to "WEIR-GW").
var requestBody = func() []byte {
	b := make([]byte, 0, 1024+32)
	for i := 0; len(b) < 1024; i++ {
		b = fmt.Appendf(b, "weir bench body line %04d\n", i)
	}
	return b[:1024]
}()

var placeholderRE = regexp.MustCompile(`\{\{[A-Z_]+\}\}`)

var knownPlaceholders = map[string]bool{
	"{{LISTEN}}": true, "{{ADMIN}}": true, "{{BACKEND}}": true, "{{REDIS}}": true, "{{WASM}}": true, "{{SCENARIOS}}": true,
}

// parseScenario decodes and checks one scenario file's contents.
func parseScenario(file string, data []byte) (*scenario, error) {
	var s scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s.File = file
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{file}, a...)...)
	}
	if s.Name == "" {
		return nil, fail("name is required, e.g. name: weir+key_auth")
	}
	if strings.ContainsAny(s.Name, " \t/") {
		return nil, fail("name %q must not contain spaces or '/'", s.Name)
	}
	if s.Weir.Kind == 0 {
		return nil, fail("weir is required: the gateway config, with {{LISTEN}} and {{BACKEND}}")
	}
	if s.Weir.Kind != yaml.MappingNode {
		return nil, fail("weir must be a mapping (the gateway config)")
	}
	if len(s.Bodies) == 0 {
		s.Bodies = []string{"64B"}
	}
	for _, b := range s.Bodies {
		if _, ok := bodyKindOf(b); !ok {
			return nil, fail("bodies: %q is not a body; use %s", b, bodyKindNames())
		}
	}
	if s.Prefix != "" && !strings.HasPrefix(s.Prefix, "/") {
		return nil, fail("prefix must start with '/', got %q", s.Prefix)
	}
	for _, l := range s.Loads {
		if l < 1 || l > 200 {
			return nil, fail("loads: %d is not a percentage between 1 and 200", l)
		}
	}
	switch {
	case s.Processes == 0:
		s.Processes = 1
	case s.Processes < 0 || s.Processes > 8:
		return nil, fail("processes must be between 1 and 8, got %d", s.Processes)
	}
	if s.GOMAXPROCS == 0 {
		s.GOMAXPROCS = 1
	} else if s.GOMAXPROCS < 0 {
		return nil, fail("gomaxprocs must be >= 1, got %d", s.GOMAXPROCS)
	}
	if a := s.Accuracy; a != nil {
		switch {
		case !strings.HasPrefix(a.Path, "/"):
			return nil, fail("accuracy.path must start with '/', got %q", a.Path)
		case a.OfferedRPS <= 0:
			return nil, fail("accuracy.offered_rps must be > 0")
		case a.LimitRPS <= 0:
			return nil, fail("accuracy.limit_rps must be > 0")
		case a.LimitRPS >= a.OfferedRPS:
			return nil, fail("accuracy.limit_rps must be below offered_rps, or nothing is limited")
		case a.Burst < 0:
			return nil, fail("accuracy.burst must be >= 0")
		}
	}
	if t := s.Targets; t != nil && (t.RPSRatio < 0 || t.CPURatio < 0 || t.AddedP99ms < 0) {
		return nil, fail("targets must not be negative")
	}
	out, err := yaml.Marshal(&s.Weir)
	if err != nil {
		return nil, fail("weir: %v", err)
	}
	s.rawWeir = string(out)
	for _, p := range placeholderRE.FindAllString(s.rawWeir, -1) {
		if !knownPlaceholders[p] {
			return nil, fail("weir: unknown placeholder %s; use {{LISTEN}}, {{ADMIN}}, {{BACKEND}}, {{REDIS}}, {{WASM}} or {{SCENARIOS}}", p)
		}
	}
	if !strings.Contains(s.rawWeir, "{{LISTEN}}") {
		return nil, fail("weir: listen must be {{LISTEN}}")
	}
	if !strings.Contains(s.rawWeir, "{{BACKEND}}") {
		return nil, fail("weir: no service points at {{BACKEND}}")
	}
	s.needsRedis = strings.Contains(s.rawWeir, "{{REDIS}}")
	s.needsWasm = strings.Contains(s.rawWeir, "{{WASM}}")
	return &s, nil
}

// render fills the placeholders for one process.
func (s *scenario) render(listen, admin, backend, redis string) string {
	return strings.NewReplacer(
		"{{LISTEN}}", listen,
		"{{ADMIN}}", admin,
		"{{BACKEND}}", backend,
		"{{REDIS}}", redis,
		"{{WASM}}", s.wasmDir,
		"{{SCENARIOS}}", s.dir,
	).Replace(s.rawWeir)
}

// loadScenarios reads every *.yaml in dir, in name order (which is the
// order they run and are reported in). A file that does not parse is an
// error: a typo in a scenario must not silently drop it.
func loadScenarios(dir string) ([]*scenario, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list scenarios: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("list scenarios: no *.yaml in %s", dir)
	}
	sort.Strings(files)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("list scenarios: %w", err)
	}
	var out []*scenario
	seen := map[string]string{}
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("read scenario: %w", err))
			continue
		}
		s, err := parseScenario(filepath.Base(f), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := seen[s.Name]; ok {
			errs = append(errs, fmt.Errorf("%s: name %q is already used by %s", s.File, s.Name, prev))
			continue
		}
		seen[s.Name] = s.File
		s.dir = abs
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
