package lua

import (
	"encoding/json"
	"path/filepath"
	"slices"

	"github.com/weirgw/weir/sdk"
)

// Several lua instances on one route (global ones and the route's own)
// run as one chain, ordered as Kong orders plugins: by PRIORITY, highest
// first, in every phase (access, header_filter, body_filter, log), equal
// priorities in the route's plugin order (the globals first). The chain
// takes the place of the first lua instance in the route's list of
// plugins (sdk.Factory.Group); the proxy runs the other plugins around it
// as usual (request phases in list order, response phases in reverse).

// instanceName is sdk.Factory.Instance: the name a lua instance is known
// by, so that a route's instance replaces the global one of the same name
// only. It is `name` when set, else the Kong plugin's folder name, else
// the script's `file` as written; an inline `source` without `name` has
// none (it replaces nothing). A config that does not decode has none
// either: New reports the error.
func instanceName(raw json.RawMessage) string {
	var c struct {
		Name       string `json:"name"`
		File       string `json:"file"`
		KongPlugin string `json:"kong_plugin"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil {
		return ""
	}
	switch {
	case c.Name != "":
		return c.Name
	case c.KongPlugin != "":
		return filepath.Base(filepath.Clean(c.KongPlugin))
	}
	return c.File
}

// member is the *filter inside whichever wrapper type New returned.
func member(f sdk.Filter) *filter {
	switch w := f.(type) {
	case respFilter:
		f = w.runner
	case logFilter:
		f = w.runner
	case respLogFilter:
		f = w.runner
	}
	return f.(*filter)
}

// chain runs several lua instances of one route as one filter.
type chain struct {
	members []*filter // by priority, highest first
	has     [nPhases]bool
}

// group is sdk.Factory.Group.
func group(fs []sdk.Filter) sdk.Filter {
	ch := &chain{}
	for _, f := range fs {
		m := member(f)
		ch.members = append(ch.members, m)
		for p := phase(0); p < nPhases; p++ {
			ch.has[p] = ch.has[p] || m.has[p]
		}
	}
	// Stable: equal priorities keep the route's order.
	slices.SortStableFunc(ch.members, func(a, b *filter) int { return b.priority - a.priority })
	return wrap(ch, ch.has)
}

// Start and Close do nothing: the members are started and closed by the
// config that built them (sdk.Factory.Group), never through the group.
func (*chain) Start() error { return nil }
func (*chain) Close() error { return nil }

// OnRequest runs the members' access in order until one answers
// (weir.response.exit, kong.response.exit) or fails.
func (ch *chain) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	for _, m := range ch.members {
		if st, err := m.OnRequest(c); err != nil || st == sdk.Stop {
			return st, err
		}
	}
	return sdk.Continue, nil
}

// onResponse runs every member's header_filter and body_filter, in
// priority order, also those whose access did not run because an earlier
// member answered: Kong runs the response phases of all the plugins of the
// request over an exit's answer too. The first error stops the chain.
func (ch *chain) onResponse(c *sdk.Ctx) error {
	for _, m := range ch.members {
		if !m.has[phaseHeaderFilter] && !m.has[phaseBodyFilter] {
			continue
		}
		if err := m.onResponse(c); err != nil {
			return err
		}
	}
	return nil
}

func (ch *chain) hasPhase(p phase) bool { return ch.has[p] }

// onLog runs every member's log, in priority order.
func (ch *chain) onLog(c *sdk.Ctx) {
	for _, m := range ch.members {
		if m.has[phaseLog] {
			m.onLog(c)
		}
	}
}
