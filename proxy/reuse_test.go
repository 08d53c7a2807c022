package proxy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
	"go.uber.org/goleak"
)

// counted is a test plugin that records its builds, starts and closes, to
// prove which instances a reload reuses and that the retiring snapshot
// leaves them alone.
type counted struct {
	id            string
	started, shut bool
}

func (*counted) OnRequest(*sdk.Ctx) (sdk.Status, error) { return sdk.Continue, nil }

var countedLog struct {
	sync.Mutex
	built []*counted
}

func (c *counted) Start() error {
	countedLog.Lock()
	defer countedLog.Unlock()
	c.started = true
	return nil
}

func (c *counted) Close() error {
	countedLog.Lock()
	defer countedLog.Unlock()
	c.shut = true
	return nil
}

func init() {
	sdk.Register(sdk.Factory{Name: "test_counted", New: func(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
		c := &counted{id: b.Route + string(raw)}
		if strings.Contains(string(raw), "reads") {
			b.Consumers.Get("nobody") // what it read would go stale with the consumers
		}
		if b.Route == "" {
			c.id = "global" + string(raw)
		}
		countedLog.Lock()
		defer countedLog.Unlock()
		countedLog.built = append(countedLog.built, c)
		return c, nil
	}})
}

// routeFilter returns the test_counted instance of the route named name in
// the running snapshot.
func routeFilter(t *testing.T, srv *Server, name string) *counted {
	t.Helper()
	for _, r := range srv.Current().routes {
		if r.name != name {
			continue
		}
		for i := len(r.filters) - 1; i >= 0; i-- {
			if c, ok := r.filters[i].(*counted); ok {
				return c
			}
		}
	}
	t.Fatalf("no test_counted filter on route %q", name)
	return nil
}

// routeFilters returns the chain of the route named name in the running
// snapshot.
func routeFilters(t *testing.T, srv *Server, name string) []sdk.Filter {
	t.Helper()
	for _, r := range srv.Current().routes {
		if r.name == name {
			return r.filters
		}
	}
	t.Fatalf("no route %q", name)
	return nil
}

const reuseCfg = `
listen: "127.0.0.1:0"
services:
  - {name: s, targets: [{url: "http://127.0.0.1:9"}]}
  - {name: t, targets: [{url: "TARGET"}]}
consumers: [{name: CONSUMER, credentials: {key-auth: [{key: k1}]}}]
plugins: [{name: test_counted, config: {g: GLOBAL}}]
routes:
  - {name: a, paths: ["/a"], service: s, plugins: [{name: test_counted, config: {v: A}}]}
  - {name: b, paths: ["/b"], service: s, plugins: [{name: test_counted, config: {v: 1}}]}
  - {name: c, paths: ["/c"], service: t, plugins: [{name: test_counted, config: {v: 1}}]}
  - {name: d, paths: ["/d"], service: s}
  - {name: e, paths: ["/e"], service: s, plugins: [{name: test_counted, config: {reads: 1}}]}
`

func reuseConfig(a, target, global, consumer string) string {
	return strings.NewReplacer("A", a, "TARGET", target, "GLOBAL", global, "CONSUMER", consumer).Replace(reuseCfg)
}

// TestReloadReusesUnchangedRoutes: a reload builds the plugin instances of
// the routes it changes, and of those only; the snapshot it replaces
// closes none that the new one serves with. A changed service rebuilds
// the routes on it, changed globals the globals, changed consumers the
// instances that read consumers while they were built (route e's).
func TestReloadReusesUnchangedRoutes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := New(mustParse(t, reuseConfig("1", "http://127.0.0.1:9", "1", "u1")), "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	apply := func(cfg string) {
		t.Helper()
		if err := srv.Apply(mustParse(t, cfg), "test"); err != nil {
			t.Fatal(err)
		}
		srv.retireWG.Wait() // the old snapshot has closed what it owns
	}
	a0, b0, c0 := routeFilter(t, srv, "a"), routeFilter(t, srv, "b"), routeFilter(t, srv, "c")
	for _, f := range []*counted{a0, b0, c0} {
		if !f.started {
			t.Fatalf("%s: not started", f.id)
		}
	}

	// Route a changes: only a is rebuilt; the old a is closed, b and c
	// are neither rebuilt nor closed.
	apply(reuseConfig("2", "http://127.0.0.1:9", "1", "u1"))
	a1, b1, c1 := routeFilter(t, srv, "a"), routeFilter(t, srv, "b"), routeFilter(t, srv, "c")
	if a1 == a0 || !a0.shut || !a1.started || a1.shut {
		t.Fatalf("changed route a: reused %v, old closed %v, new started %v, new closed %v", a1 == a0, a0.shut, a1.started, a1.shut)
	}
	if b1 != b0 || c1 != c0 || b0.shut || c0.shut {
		t.Fatalf("unchanged routes: b reused %v closed %v, c reused %v closed %v", b1 == b0, b0.shut, c1 == c0, c0.shut)
	}

	// Service t changes: route c (on t) is rebuilt, a and b are not.
	apply(reuseConfig("2", "http://127.0.0.1:8", "1", "u1"))
	a2, b2, c2 := routeFilter(t, srv, "a"), routeFilter(t, srv, "b"), routeFilter(t, srv, "c")
	if c2 == c1 || !c1.shut || a2 != a1 || b2 != b1 || a1.shut || b1.shut {
		t.Fatalf("changed service: c rebuilt %v (old closed %v), a reused %v, b reused %v", c2 != c1, c1.shut, a2 == a1, b2 == b1)
	}

	// The global plugin changes: the globals are rebuilt (and route d,
	// which has no instance of its own, runs the new one), the routes'
	// own are not.
	g0 := routeFilter(t, srv, "d")
	apply(reuseConfig("2", "http://127.0.0.1:8", "2", "u1"))
	g1 := routeFilter(t, srv, "d")
	if g1 == g0 || !g0.shut || routeFilter(t, srv, "b") != b2 {
		t.Fatalf("changed global: rebuilt %v, old closed %v, route b reused %v", g1 != g0, g0.shut, routeFilter(t, srv, "b") == b2)
	}
	if d := routeFilter(t, srv, "d"); d != g1 {
		t.Fatalf("route d runs global %s, want the new instance", d.id)
	}
	// Route d's unit is kept (its config is unchanged), but its chain
	// is made again: it runs the new global instance alone.
	if df := routeFilters(t, srv, "d"); len(df) != 1 || df[0] != sdk.Filter(g1) {
		t.Fatalf("route d runs %v after the globals changed, want the new global alone", df)
	}

	// Consumers change: the instance that read them is built again, the
	// others are kept.
	e0 := routeFilter(t, srv, "e")
	apply(reuseConfig("2", "http://127.0.0.1:8", "2", "u2"))
	if routeFilter(t, srv, "e") == e0 || !e0.shut {
		t.Fatal("changed consumers: the instance that read them was reused or not closed")
	}
	if routeFilter(t, srv, "a") != a2 || routeFilter(t, srv, "b") != b2 || routeFilter(t, srv, "c") != c2 ||
		routeFilter(t, srv, "d") != g1 || a2.shut || b2.shut || c2.shut || g1.shut {
		t.Fatal("changed consumers: an instance that never read them was rebuilt or closed")
	}

	// Shutdown: no instance ever built stays open.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	countedLog.Lock()
	defer countedLog.Unlock()
	for _, c := range countedLog.built {
		if !c.shut {
			t.Fatalf("%s: never closed", c.id)
		}
	}
}

// TestConsumersKey: the consumers' key changes with every field of every
// consumer and not with the order of credential kinds (a map), so units
// are reused exactly when the consumers are the same.
func TestConsumersKey(t *testing.T) {
	mk := func() []config.Consumer {
		return []config.Consumer{
			{Name: "ann", Groups: []string{"a", "b"}, Credentials: sdk.Credentials{
				{Plugin: "jwt", List: []json.RawMessage{json.RawMessage(`{"key":"j"}`)}},
				{Plugin: "key_auth", List: []json.RawMessage{json.RawMessage(`{"key":"k1"}`)}}}},
			{Name: "bob"},
		}
	}
	base := consumersKey(mk())
	if consumersKey(mk()) != base {
		t.Fatal("equal consumers hash apart")
	}
	changes := map[string]func(c []config.Consumer) []config.Consumer{
		"name":          func(c []config.Consumer) []config.Consumer { c[1].Name = "bo"; return c },
		"group":         func(c []config.Consumer) []config.Consumer { c[0].Groups[1] = "c"; return c },
		"group moved":   func(c []config.Consumer) []config.Consumer { c[0].Groups = []string{"ab"}; return c },
		"name to group": func(c []config.Consumer) []config.Consumer { c[0].Name = "anna"; c[0].Groups[0] = ""; return c },
		"credential": func(c []config.Consumer) []config.Consumer {
			c[0].Credentials.Of("key_auth")[0] = json.RawMessage(`{"key":"k2"}`)
			return c
		},
		"kind": func(c []config.Consumer) []config.Consumer {
			c[0].Credentials = append(c[0].Credentials, sdk.CredentialList{Plugin: "jwt2"})
			return c
		},
		"one more": func(c []config.Consumer) []config.Consumer { return append(c, config.Consumer{Name: "cy"}) },
		"one less": func(c []config.Consumer) []config.Consumer { return c[:1] },
		"order":    func(c []config.Consumer) []config.Consumer { c[0], c[1] = c[1], c[0]; return c },
		"second key": func(c []config.Consumer) []config.Consumer {
			c[1].Credentials = sdk.Credentials{{Plugin: "key_auth", List: []json.RawMessage{json.RawMessage(`{}`)}}}
			return c
		},
		"credential cut": func(c []config.Consumer) []config.Consumer {
			c[0].Credentials[0].List = append(c[0].Credentials[0].List, nil) // jwt
			return c
		},
	}
	for name, change := range changes {
		if consumersKey(change(mk())) == base {
			t.Errorf("%s: the key did not change", name)
		}
	}
}
