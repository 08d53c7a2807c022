// Package acl is the acl plugin: it lets a request through or answers 403
// according to the groups of the consumer an authentication plugin
// identified (key_auth, jwt, ...) and the scopes its token granted.
//
// It must run after an authentication plugin: a request with neither a
// consumer nor scopes is answered 401, because there is nothing to decide on.
package acl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/sdk"
)

func init() { sdk.Register(sdk.Factory{Name: "acl", New: New}) }

// Config is the plugin's `config` object. Entries are "group:NAME" (only a
// consumer group), "scope:NAME" (only a token scope), "consumer:NAME" (one
// consumer) or a bare NAME, which matches a group or a scope of that name.
type Config struct {
	Allow []string `json:"allow"`
	Deny  []string `json:"deny"`
}

// matcher is a compiled allow or deny list. Map lookups with the request's
// strings do not allocate.
type matcher struct {
	groups    map[string]struct{}
	scopes    map[string]struct{}
	consumers map[string]struct{}
}

func (m *matcher) empty() bool {
	return len(m.groups) == 0 && len(m.scopes) == 0 && len(m.consumers) == 0
}

// matches reports whether the request's consumer or scopes hit an entry.
func (m *matcher) matches(cons *sdk.Consumer, scopes []string) bool {
	if cons != nil {
		if _, ok := m.consumers[cons.Name]; ok {
			return true
		}
		if len(m.groups) > 0 {
			for _, g := range cons.Groups {
				if _, ok := m.groups[g]; ok {
					return true
				}
			}
		}
	}
	if len(m.scopes) > 0 {
		for _, s := range scopes {
			if _, ok := m.scopes[s]; ok {
				return true
			}
		}
	}
	return false
}

func compile(key string, list []string, cs *sdk.Consumers) (matcher, error) {
	m := matcher{groups: map[string]struct{}{}, scopes: map[string]struct{}{}, consumers: map[string]struct{}{}}
	// Every bad entry is reported, not just the first.
	var errs []error
	for i, e := range list {
		kind, name := "", e
		for _, p := range []string{"group", "scope", "consumer"} {
			if rest, ok := strings.CutPrefix(e, p+":"); ok {
				kind, name = p, rest
				break
			}
		}
		switch {
		case strings.TrimSpace(name) == "":
			errs = append(errs, fmt.Errorf("%s[%d]: %q names nothing; write a group, a scope, group:NAME, scope:NAME or consumer:NAME", key, i, e))
			continue
		case strings.TrimSpace(name) != name:
			errs = append(errs, fmt.Errorf("%s[%d]: %q has surrounding spaces; remove them", key, i, e))
			continue
		}
		switch kind {
		case "group":
			m.groups[name] = struct{}{}
		case "scope":
			m.scopes[name] = struct{}{}
		case "consumer":
			// A misspelt consumer name would silently never match: refuse it.
			if cs.Get(name) == nil {
				errs = append(errs, fmt.Errorf("%s[%d]: no consumer named %q; add it under consumers or fix the name", key, i, name))
				continue
			}
			m.consumers[name] = struct{}{}
		default:
			m.groups[name] = struct{}{}
			m.scopes[name] = struct{}{}
		}
	}
	if len(errs) > 0 {
		return matcher{}, errors.Join(errs...)
	}
	return m, nil
}

type filter struct {
	allow, deny matcher

	unauthenticated *metrics.Counter
	forbidden       *metrics.Counter
}

// New validates and compiles the config.
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Allow) == 0 && len(cfg.Deny) == 0 {
		return nil, errors.New("set allow or deny (lists of consumer groups or token scopes)")
	}
	f := &filter{}
	// Both lists are checked and the errors joined: one run shows them all.
	var errA, errD error
	f.allow, errA = compile("allow", cfg.Allow, b.Consumers)
	f.deny, errD = compile("deny", cfg.Deny, b.Consumers)
	if err := errors.Join(errA, errD); err != nil {
		return nil, err
	}
	route := b.Route
	if route == "" {
		route = "_global"
	}
	name := func(reason string) string {
		return fmt.Sprintf(`weir_auth_failures_total{plugin="acl",route=%q,reason=%q}`, route, reason)
	}
	f.unauthenticated = metrics.GetOrCreateCounter(name("unauthenticated"))
	f.forbidden = metrics.GetOrCreateCounter(name("forbidden"))
	return f, nil
}

// OnRequest applies deny first (deny wins over allow), then allow. It does
// not allocate.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	cons, scopes := c.Consumer(), c.Scopes()
	if cons == nil && len(scopes) == 0 {
		f.unauthenticated.Inc()
		return c.Fail(401, "unauthenticated"), nil
	}
	if f.deny.matches(cons, scopes) || (!f.allow.empty() && !f.allow.matches(cons, scopes)) {
		f.forbidden.Inc()
		return c.Fail(403, "forbidden"), nil
	}
	return sdk.Continue, nil
}
