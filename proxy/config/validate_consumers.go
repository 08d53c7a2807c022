package config

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/weirgw/weir/sdk"
)

func (v *validator) checkConsumers() {
	// Sized up front, and places written only for an error: at a million
	// consumers, growing the map and building place strings that were
	// never used cost over a second of start-up.
	first := make(map[string]int, len(v.c.Consumers))
	var cc consumerCheck
	for i := range v.c.Consumers {
		cs := &v.c.Consumers[i]
		cc.check(&v.errs, i, cs, func() (int, bool) {
			j, dup := first[cs.Name]
			if !dup {
				first[cs.Name] = i
			}
			return j, dup
		})
	}
}

// ValidateConsumer checks consumers[i] of a config whose other consumers
// are valid, as Validate would (every error, each with its place): the
// admin API's change of one consumer, in time that does not grow with
// the number of consumers. dup reports the place of another consumer of
// the same name.
func ValidateConsumer(file string, i int, c *Consumer, dup func(name string) (int, bool)) error {
	e := &errs{file: file}
	var cc consumerCheck
	cc.check(e, i, c, func() (int, bool) { return dup(c.Name) })
	return e.err()
}

// consumerCheck checks one consumer; it keeps scratch space for the next.
type consumerCheck struct {
	groups map[string]bool
	kinds  []string
}

// check adds cs's errors to v; dup reports (and records) the place of an
// earlier consumer of the same name.
func (cc *consumerCheck) check(v *errs, i int, cs *Consumer, dup func() (int, bool)) {
	p := func() string { return index("consumers", i) }
	switch {
	case cs.Name == "":
		v.add(key(p(), "name"), "a consumer needs a name")
	case !visibleASCII(cs.Name):
		v.add(key(p(), "name"), "%q holds spaces, control or non-ASCII characters, which cannot go upstream in X-Consumer-Name: rename it", cs.Name)
	default:
		if j, dup := dup(); dup {
			v.add(key(p(), "name"), "consumers[%d] is already named %q: consumer names must be unique", j, cs.Name)
		}
	}
	if len(cs.Groups) > 1 {
		if cc.groups == nil {
			cc.groups = map[string]bool{}
		}
		clear(cc.groups)
	}
	for j, g := range cs.Groups {
		gp := func() string { return index(key(p(), "groups"), j) }
		switch {
		case !visibleASCII(g) || strings.Contains(g, ","):
			v.add(gp(), "%q is not a group name: use printable ASCII without spaces or commas (X-Consumer-Groups is comma separated)", g)
		case len(cs.Groups) > 1 && cc.groups[g]:
			v.add(gp(), "%q is listed twice; keep one", g)
		}
		if len(cs.Groups) > 1 {
			cc.groups[g] = true
		}
	}
	cc.kinds = cc.kinds[:0]
	for _, cl := range cs.Credentials {
		cc.kinds = append(cc.kinds, cl.Plugin)
	}
	sort.Strings(cc.kinds)
	for _, kind := range cc.kinds {
		kp := func() string { return key(key(p(), "credentials"), kind) }
		if kind == "" {
			v.add(kp(), "a credential kind is empty: use the name of the plugin the credentials are for, such as key_auth")
			continue
		}
		for j, raw := range cs.Credentials.Of(kind) {
			if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
				v.add(index(kp(), j), "expected a mapping of the %s plugin's credential fields, such as {key: \"...\"}", kind)
			}
		}
	}
}

// pluginList checks the plugin instances of one list (global or a
// route's): registered names, each at most once (or, for a plugin that
// may have several instances, each instance name at most once), config a
// mapping.
func (v *validator) pluginList(p string, plugins []Plugin) {
	first := map[string]int{}
	for i, pl := range plugins {
		ip := index(p, i)
		if pl.Name == "" {
			v.add(key(ip, "name"), "a plugin needs a name%s", registered())
			continue
		}
		if _, ok := sdk.Lookup(pl.Name); !ok {
			hint := didYouMean(pl.Name, sdk.Names())
			if hint == "" {
				hint = registered()
			}
			v.add(ip, "unknown plugin %q%s", pl.Name, hint)
		}
		if id, named := sdk.InstanceName(pl.Name, pl.Config); named {
			if j, dup := first[id]; dup {
				if id == pl.Name {
					v.add(ip, "plugin %q is also %s: keep one instance per list", pl.Name, index(p, j))
				} else {
					v.add(ip, "plugin %s is also %s: give each instance its own name", id, index(p, j))
				}
			} else {
				first[id] = i
			}
		}
		if t := bytes.TrimSpace(pl.Config); len(t) > 0 && t[0] != '{' && !bytes.Equal(t, []byte("null")) {
			v.add(key(ip, "config"), "expected a mapping of the %s plugin's settings", pl.Name)
		}
	}
}

// registered lists the compiled-in plugins for hints.
func registered() string {
	names := sdk.Names()
	if len(names) == 0 {
		return " (no plugins are compiled in)"
	}
	return fmt.Sprintf(" (known: %s)", quoteList(names))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
