package transform

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	json "github.com/goccy/go-json"
	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/sdk"
)

// Side says which message a Program transforms.
type Side uint8

const (
	// Request: request_transformer (headers, query, path, JSON body).
	Request Side = iota
	// Response: response_transformer (headers, JSON body).
	Response
)

// Config is the plugins' `config` object (plugins/request_transformer/README.md).
// response_transformer takes the same without `path` and `query`.
type Config struct {
	// Add sets headers / query arguments only when the message lacks them.
	Add ValuesSection `json:"add"`
	// Set sets them always, replacing every existing occurrence.
	Set ValuesSection `json:"set"`
	// Remove deletes every occurrence.
	Remove NamesSection `json:"remove"`
	// Rename moves every occurrence to the new name (replacing it).
	Rename RenameSection `json:"rename"`
	// Path replaces the upstream path; "{name}" expands to a route
	// parameter.
	Path *string `json:"path"`
	// JSON edits JSON bodies.
	JSON JSONSection `json:"json"`
	// MaxBodyBytes is the largest body the JSON operations read; larger
	// ones pass untouched. Default 1 MiB. The proxy streams bodies over
	// 256 KiB (and of unknown length) anyway, and streamed bodies are
	// never transformed.
	MaxBodyBytes *int64 `json:"max_body_bytes"`
}

// ValuesSection holds name → value maps. Values are strings; numbers and
// booleans are taken as their text, as YAML writes `v: 2`.
type ValuesSection struct {
	Headers map[string]json.RawMessage `json:"headers"`
	Query   map[string]json.RawMessage `json:"query"`
}

// NamesSection lists names.
type NamesSection struct {
	Headers []string `json:"headers"`
	Query   []string `json:"query"`
}

// RenameSection maps old names to new ones.
type RenameSection struct {
	Headers map[string]string `json:"headers"`
	Query   map[string]string `json:"query"`
}

// JSONSection holds dotted paths (ParseJSONPath).
type JSONSection struct {
	// Set maps a path to any JSON value; missing objects on the way are
	// created.
	Set map[string]json.RawMessage `json:"set"`
	// Remove lists paths to delete; keys match whatever their case.
	Remove []string `json:"remove"`
}

const (
	// DefaultMaxBodyBytes is max_body_bytes when absent.
	DefaultMaxBodyBytes = 1 << 20
	maxMaxBodyBytes     = 64 << 20
)

// Program is a compiled transformer config. It is immutable and shared by
// every request of a snapshot.
type Program struct {
	side    Side
	plugin  string
	headers headerProgram
	query   queryProgram
	path    *Template // nil: the path is not rewritten
	json    *jsonProgram
	maxBody int
	// scratchNeeded: some operation renders into the pooled scratch.
	scratchNeeded bool
	results       [numResults]*metrics.Counter
}

// Compile validates raw (the plugin's config as JSON) and compiles it.
// plugin is the plugin's name, used in errors and metric labels.
func Compile(b *sdk.Build, raw json.RawMessage, side Side, plugin string) (*Program, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	p := &Program{side: side, plugin: plugin, maxBody: DefaultMaxBodyBytes}
	// Each part is checked and the errors joined, so that one run shows
	// them all.
	var errs []error
	bad := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if side == Response {
		if cfg.Path != nil {
			bad(errors.New("path: response_transformer cannot rewrite the path; use request_transformer"))
			cfg.Path = nil
		}
		for _, s := range []struct {
			name string
			n    int
		}{{"add", len(cfg.Add.Query)}, {"set", len(cfg.Set.Query)}, {"remove", len(cfg.Remove.Query)}, {"rename", len(cfg.Rename.Query)}} {
			if s.n > 0 {
				bad(fmt.Errorf("%s.query: a response has no query arguments; use request_transformer", s.name))
			}
		}
		if len(errs) > 0 {
			// The query and path of a response config are not compiled.
			return nil, errors.Join(errs...)
		}
	}
	var err error
	p.headers, err = compileHeaders(&cfg, side, b, plugin)
	bad(err)
	p.query, err = compileQuery(&cfg, b, plugin)
	bad(err)
	if cfg.Path != nil {
		t, err := compilePath(*cfg.Path, b, plugin)
		if err == nil {
			p.path = &t
		}
		bad(err)
	}
	p.json, err = buildJSON(cfg.JSON.Set, cfg.JSON.Remove)
	bad(err)
	if cfg.MaxBodyBytes != nil {
		if n := *cfg.MaxBodyBytes; n < 1 || n > maxMaxBodyBytes {
			bad(fmt.Errorf("max_body_bytes must be between 1 and %d (64 MiB); the default is %d (1 MiB)", maxMaxBodyBytes, DefaultMaxBodyBytes))
		}
		p.maxBody = int(*cfg.MaxBodyBytes)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if p.headers.empty() && p.query.empty() && p.path == nil && p.json == nil {
		what := "add, set, remove, rename, path or json"
		if side == Response {
			what = "add, set, remove, rename or json"
		}
		return nil, fmt.Errorf("nothing to do; configure at least one of %s", what)
	}
	p.scratchNeeded = p.headers.needsScratch() || !p.query.empty() || p.json != nil ||
		p.path != nil && !p.path.IsLiteral()
	if p.json != nil {
		route := b.Route
		if route == "" {
			route = "_global"
		}
		for i := range p.results {
			p.results[i] = metrics.GetOrCreateCounter(fmt.Sprintf(`weir_transformer_json_bodies_total{plugin=%q,route=%q,result=%q}`,
				plugin, route, resultNames[i]))
		}
	}
	return p, nil
}

// scalar converts a config value to its text: strings as they are,
// numbers and booleans as written.
func scalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw), true
	}
	return "", false
}

func compileHeaders(cfg *Config, side Side, b *sdk.Build, plugin string) (headerProgram, error) {
	var hp headerProgram
	owner := map[string]string{} // canonical name → "set.headers" ...
	claim := func(where, display, canon string) error {
		if prev, ok := owner[canon]; ok {
			if prev == where {
				return fmt.Errorf("%s: %q is listed twice (header names ignore case); keep one", where, display)
			}
			return fmt.Errorf("%s: %q is also in %s; keep one (the operations run in the order remove, rename, set, add)", where, display, prev)
		}
		owner[canon] = where
		return nil
	}
	check := func(where, name string) (string, error) {
		if !confval.IsToken(name) {
			return "", fmt.Errorf("%s: %q is not a valid header name; %s", where, name, headerNameHelp)
		}
		canon := canonicalHeader(name)
		if why := forbiddenReason(canon, side); why != "" {
			return "", fmt.Errorf("%s: %s cannot be changed: %s", where, canon, why)
		}
		return canon, nil
	}

	// remove
	for _, name := range cfg.Remove.Headers {
		canon, err := check("remove.headers", name)
		if err != nil {
			return hp, err
		}
		if err := claim("remove.headers", name, canon); err != nil {
			return hp, err
		}
		hp.remove = append(hp.remove, canon)
	}
	sort.Strings(hp.remove)

	// rename: sources and targets are claimed; a name may be a target
	// of one rename only and may not be both a source and a target.
	targets := map[string]string{}
	for _, from := range sortedKeys(cfg.Rename.Headers) {
		to := cfg.Rename.Headers[from]
		cf, err := check("rename.headers", from)
		if err != nil {
			return hp, err
		}
		ct, err := check("rename.headers."+from, to)
		if err != nil {
			return hp, err
		}
		if notRenamable[cf] || notRenamable[ct] {
			return hp, fmt.Errorf("rename.headers.%s: Cookie and Set-Cookie cannot be renamed (they are kept parsed, not as lines); use remove and set", from)
		}
		if cf == ct {
			return hp, fmt.Errorf("rename.headers.%s: the header is renamed to itself; remove the entry", from)
		}
		if prev, ok := targets[ct]; ok {
			return hp, fmt.Errorf("rename.headers: %q and %q are both renamed to %q; keep one", prev, from, to)
		}
		targets[ct] = from
		if err := claim("rename.headers", from, cf); err != nil {
			return hp, err
		}
		hp.rename = append(hp.rename, headerOp{name: cf, to: ct})
	}
	for _, op := range hp.rename {
		if from, ok := targets[op.name]; ok {
			return hp, fmt.Errorf("rename.headers: %s is renamed, and %s is renamed to it; rename %s to %s directly", op.name, canonicalHeader(from), canonicalHeader(from), op.to)
		}
		if prev, ok := owner[op.to]; ok && prev == "remove.headers" {
			return hp, fmt.Errorf("rename.headers: the target %s is also in remove.headers; keep one", op.to)
		}
	}

	values := func(where string, m map[string]json.RawMessage) ([]headerOp, error) {
		var ops []headerOp
		for _, name := range sortedKeys(m) {
			canon, err := check(where, name)
			if err != nil {
				return nil, err
			}
			if err := claim(where, name, canon); err != nil {
				return nil, err
			}
			at := where + "." + name
			v, ok := scalar(m[name])
			if !ok {
				return nil, fmt.Errorf("%s: the value must be a string, number or boolean", at)
			}
			if !validFieldValue(v) {
				return nil, fmt.Errorf("%s: the value contains a control character (such as CR or LF); a header value is one line of text", at)
			}
			if strings.TrimSpace(v) != v {
				return nil, fmt.Errorf("%s: the value starts or ends with whitespace, which HTTP strips (RFC 9110 §5.5); remove it", at)
			}
			t, err := ParseTemplate(v, false)
			if err != nil {
				return nil, fmt.Errorf("%s: the value %w", at, err)
			}
			if err := checkTemplateParams(&t, b, plugin); err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			op := headerOp{name: canon, key: []byte(canon), value: t}
			if t.IsLiteral() {
				op.lit = []byte(t.Literal())
			}
			ops = append(ops, op)
		}
		return ops, nil
	}
	var err error
	if hp.set, err = values("set.headers", cfg.Set.Headers); err != nil {
		return hp, err
	}
	for _, op := range hp.set {
		if from, ok := targets[op.name]; ok {
			return hp, fmt.Errorf("set.headers: %s is also the target of rename.headers.%s, whose value set would replace; keep one", op.name, from)
		}
	}
	if hp.add, err = values("add.headers", cfg.Add.Headers); err != nil {
		return hp, err
	}
	return hp, nil
}

func compileQuery(cfg *Config, b *sdk.Build, plugin string) (queryProgram, error) {
	var qp queryProgram
	owner := map[string]string{}
	claim := func(where, name string) error {
		if name == "" {
			return fmt.Errorf("%s: a query argument name must not be empty", where)
		}
		if prev, ok := owner[name]; ok {
			return fmt.Errorf("%s: %q is also in %s; keep one (the operations run in the order remove, rename, set, add)", where, name, prev)
		}
		owner[name] = where
		return nil
	}
	for _, name := range cfg.Remove.Query {
		if err := claim("remove.query", name); err != nil {
			return qp, err
		}
		qp.remove = append(qp.remove, name)
	}
	targets := map[string]string{}
	for _, from := range sortedKeys(cfg.Rename.Query) {
		to := cfg.Rename.Query[from]
		if to == "" {
			return qp, fmt.Errorf("rename.query.%s: the new name must not be empty", from)
		}
		if from == to {
			return qp, fmt.Errorf("rename.query.%s: the argument is renamed to itself; remove the entry", from)
		}
		if prev, ok := targets[to]; ok {
			return qp, fmt.Errorf("rename.query: %q and %q are both renamed to %q; keep one", prev, from, to)
		}
		targets[to] = from
		if err := claim("rename.query", from); err != nil {
			return qp, err
		}
		qp.rename = append(qp.rename, queryOp{name: from, encName: queryEscape(from), to: to, encTo: queryEscape(to)})
	}
	for _, op := range qp.rename {
		if from, ok := targets[op.name]; ok {
			return qp, fmt.Errorf("rename.query: %q is renamed, and %q is renamed to it; rename %q to %q directly", op.name, from, from, op.to)
		}
		if owner[op.to] == "remove.query" {
			return qp, fmt.Errorf("rename.query: the target %q is also in remove.query; keep one", op.to)
		}
	}
	values := func(where string, m map[string]json.RawMessage) ([]queryOp, error) {
		var ops []queryOp
		for _, name := range sortedKeys(m) {
			if err := claim(where, name); err != nil {
				return nil, err
			}
			at := where + "." + name
			v, ok := scalar(m[name])
			if !ok {
				return nil, fmt.Errorf("%s: the value must be a string, number or boolean", at)
			}
			t, err := ParseTemplate(v, false)
			if err != nil {
				return nil, fmt.Errorf("%s: the value %w", at, err)
			}
			if err := checkTemplateParams(&t, b, plugin); err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			ops = append(ops, queryOp{name: name, encName: queryEscape(name), value: t.mapLiterals(queryEscape)})
		}
		return ops, nil
	}
	var err error
	if qp.set, err = values("set.query", cfg.Set.Query); err != nil {
		return qp, err
	}
	for _, op := range qp.set {
		if from, ok := targets[op.name]; ok {
			return qp, fmt.Errorf("set.query: %q is also the target of rename.query.%s, whose value set would replace; keep one", op.name, from)
		}
	}
	if qp.add, err = values("add.query", cfg.Add.Query); err != nil {
		return qp, err
	}
	for i := range qp.add {
		for j := range qp.rename {
			if qp.rename[j].to == qp.add[i].name {
				qp.add[i].addAfterRename = j + 1
			}
		}
	}
	for _, l := range []struct {
		name string
		n    int
	}{{"remove.query", len(qp.remove)}, {"rename.query", len(qp.rename)}, {"set.query", len(qp.set)}, {"add.query", len(qp.add)}} {
		if l.n > maxOps {
			return qp, fmt.Errorf("%s: %d entries; at most %d are allowed", l.name, l.n, maxOps)
		}
	}
	return qp, nil
}

// compilePath checks the path template. It is written decoded, as
// c.Path() is; the proxy percent-encodes what it sends.
func compilePath(s string, b *sdk.Build, plugin string) (Template, error) {
	q := fmt.Sprintf("%q", s)
	switch {
	case s == "" || s[0] != '/':
		return Template{}, fmt.Errorf(`path: %s must start with "/"`, q)
	case strings.ContainsAny(s, "?#"):
		return Template{}, fmt.Errorf("path: %s must not contain \"?\" or \"#\"; change query arguments with add.query, set.query, remove.query or rename.query", q)
	case strings.ContainsRune(s, '\\') || !validFieldValue(s) || strings.ContainsAny(s, "\t"):
		return Template{}, fmt.Errorf("path: %s must not contain control characters or backslashes", q)
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == "." || seg == ".." {
			return Template{}, fmt.Errorf(`path: %s has a "." or ".." segment; write the path the upstream should get`, q)
		}
	}
	t, err := ParseTemplate(s, true)
	if err != nil {
		return Template{}, fmt.Errorf("path: %s %w", q, err)
	}
	if err := checkTemplateParams(&t, b, plugin); err != nil {
		return Template{}, fmt.Errorf("path: %w", err)
	}
	return t, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
