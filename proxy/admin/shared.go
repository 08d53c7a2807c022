package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/weirgw/weir/proxy/config"
)

// A config has two parts. The shared objects (services, routes, consumers,
// global plugins) are what a cluster shares through Redis and what the
// admin API's object endpoints edit. The node-local settings (listen,
// admin, redis, server) belong to one process: they are never copied
// between nodes. sharedDoc is the shared part, and this file is the one
// place that knows which fields are which.
type sharedDoc struct {
	Services  []config.Service  `json:"services,omitempty"`
	Routes    []config.Route    `json:"routes,omitempty"`
	Consumers []config.Consumer `json:"consumers,omitempty"`
	Plugins   []config.Plugin   `json:"plugins,omitempty"`
}

func sharedOf(c *config.Config) sharedDoc {
	return sharedDoc{Services: c.Services, Routes: c.Routes, Consumers: c.Consumers, Plugins: c.Plugins}
}

// marshalShared writes the shared part of c in the config's canonical
// JSON, so that equal shared parts give equal bytes.
func marshalShared(c *config.Config) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// The config types always encode (raw JSON in them has been parsed).
	if err := enc.Encode(sharedOf(c)); err != nil {
		panic(fmt.Sprintf("admin: encoding the shared config: %v", err))
	}
	return b.Bytes()
}

// SharedEqual reports whether a and b have the same shared objects
// (defaults applied to both).
func SharedEqual(a, b *config.Config) bool {
	return sameObjects(a.Services, b.Services) && sameObjects(a.Routes, b.Routes) &&
		sameObjects(a.Consumers, b.Consumers) && sameObjects(a.Plugins, b.Plugins)
}

// sameObjects reports whether two lists encode to the same JSON, as
// their part of marshalShared would, object by object: equal values
// (reflect.DeepEqual) need no encoding, and the first difference ends the
// walk. A file reload asks this of two 10,000-route configs; encoding
// both whole took a tenth of the reload.
func sameObjects[T any](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if reflect.DeepEqual(&a[i], &b[i]) {
			continue
		}
		// Unequal values may still write the same JSON (a nil and an
		// empty list both omitted).
		ja, _ := json.Marshal(&a[i])
		jb, _ := json.Marshal(&b[i])
		if !bytes.Equal(ja, jb) {
			return false
		}
	}
	return true
}

// WithShared returns a copy of local whose shared objects are those of
// shared: the node-local settings stay local's. Defaults are applied.
func WithShared(local, shared *config.Config) *config.Config {
	out := local.Clone()
	s := shared.Clone()
	out.Services, out.Routes, out.Consumers, out.Plugins = s.Services, s.Routes, s.Consumers, s.Plugins
	config.ApplyDefaults(out)
	return out
}

// localSettingsChanged names the node-local settings that differ between
// a and b.
func localSettingsChanged(a, b *config.Config) []string {
	out := []string{}
	enc := func(v any) string {
		raw, _ := json.Marshal(v)
		return string(raw)
	}
	if enc(a.Listen) != enc(b.Listen) {
		out = append(out, "listen")
	}
	if enc(a.Admin) != enc(b.Admin) {
		out = append(out, "admin")
	}
	if enc(a.Redis) != enc(b.Redis) {
		out = append(out, "redis")
	}
	if enc(a.Server) != enc(b.Server) {
		out = append(out, "server")
	}
	return out
}

// KindDiff lists the objects of one kind that a change adds, removes or
// changes, by name.
type KindDiff struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
	// Reordered is set when the objects both sides hold come in another
	// order (it matters for global plugins, which run in list order).
	Reordered bool `json:"reordered,omitempty"`
}

func (k KindDiff) empty() bool {
	return len(k.Added)+len(k.Removed)+len(k.Changed) == 0 && !k.Reordered
}

// Diff is what replacing one config with another changes.
type Diff struct {
	Changed   bool     `json:"changed"`
	Services  KindDiff `json:"services"`
	Routes    KindDiff `json:"routes"`
	Consumers KindDiff `json:"consumers"`
	Plugins   KindDiff `json:"plugins"`
	// NodeLocal names the node-local settings (listen, admin, redis,
	// server) that differ; they apply to this node only.
	NodeLocal []string `json:"node_local"`
}

// SharedChanged reports whether any shared object differs.
func (d Diff) SharedChanged() bool {
	return !d.Services.empty() || !d.Routes.empty() || !d.Consumers.empty() || !d.Plugins.empty()
}

// ConfigDiff compares two configs (defaults applied to both) object by
// object.
func ConfigDiff(from, to *config.Config) Diff {
	d := Diff{
		Services:  diffNamed(from.Services, to.Services, func(s config.Service) string { return s.Name }),
		Routes:    diffNamed(from.Routes, to.Routes, func(r config.Route) string { return r.Name }),
		Consumers: diffNamed(from.Consumers, to.Consumers, func(c config.Consumer) string { return c.Name }),
		Plugins:   diffNamed(from.Plugins, to.Plugins, func(p config.Plugin) string { return p.Name }),
		NodeLocal: localSettingsChanged(from, to),
	}
	d.Changed = d.SharedChanged() || len(d.NodeLocal) > 0
	return d
}

// diffNamed compares two lists by name; an object is changed when its
// canonical JSON differs, and the list is reordered when the objects both
// hold come in another order. A name given twice (global plugins may
// repeat) is told apart by its occurrence, as "name#2".
func diffNamed[T any](from, to []T, name func(T) string) KindDiff {
	index := func(list []T) (map[string]string, []string) {
		m := make(map[string]string, len(list))
		var order []string
		seen := map[string]int{}
		for _, x := range list {
			n := name(x)
			seen[n]++
			if seen[n] > 1 {
				n = fmt.Sprintf("%s#%d", n, seen[n])
			}
			raw, _ := json.Marshal(x)
			m[n] = string(raw)
			order = append(order, n)
		}
		return m, order
	}
	fm, forder := index(from)
	tm, torder := index(to)
	d := KindDiff{Added: []string{}, Removed: []string{}, Changed: []string{}}
	var fcommon, tcommon []string
	for _, n := range torder {
		f, ok := fm[n]
		switch {
		case !ok:
			d.Added = append(d.Added, n)
			continue
		case f != tm[n]:
			d.Changed = append(d.Changed, n)
		}
		tcommon = append(tcommon, n)
	}
	for _, n := range forder {
		if _, ok := tm[n]; !ok {
			d.Removed = append(d.Removed, n)
			continue
		}
		fcommon = append(fcommon, n)
	}
	d.Reordered = !slices.Equal(fcommon, tcommon)
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Changed)
	return d
}
