package acl

import (
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/plugins/internal/plugintest"
	"github.com/weirgw/weir/sdk"
)

var (
	alice = &sdk.Consumer{Name: "alice", Groups: []string{"gold", "staff"}}
	bob   = &sdk.Consumer{Name: "bob", Groups: []string{"silver"}}
	carol = &sdk.Consumer{Name: "carol"} // no groups
)

func build(route string) *sdk.Build {
	return &sdk.Build{Route: route, Consumers: sdk.NewConsumers([]*sdk.Consumer{alice, bob, carol})}
}

func mustNew(t testing.TB, route, cfg string) sdk.Filter {
	t.Helper()
	return plugintest.New[sdk.Filter](t, New, build(route), cfg)
}

// identified is a request that an earlier plugin identified.
func identified(cons *sdk.Consumer, scopes []string) plugintest.Request {
	return plugintest.Request{Consumer: cons, Credential: "cred", Scopes: scopes}
}

func TestConfig(t *testing.T) {
	plugintest.Configs(t, New, build("r"), []plugintest.ConfigCase{
		{Name: "allow groups", Cfg: `{"allow":["gold","silver"]}`},
		{Name: "deny scopes", Cfg: `{"deny":["scope:admin"]}`},
		{Name: "both", Cfg: `{"allow":["gold"],"deny":["group:banned"]}`},
		{Name: "consumer entry", Cfg: `{"allow":["consumer:alice"]}`},
		{Name: "colon in bare scope", Cfg: `{"allow":["read:users"]}`},
		{Name: "empty", Cfg: ``, Err: "set allow or deny (lists of consumer groups or token scopes)"},
		{Name: "empty lists", Cfg: `{"allow":[],"deny":null}`, Err: "set allow or deny (lists of consumer groups or token scopes)"},
		{Name: "unknown key", Cfg: `{"allowed":["gold"]}`, Err: `unknown field "allowed"`},
		{Name: "wrong type", Cfg: `{"allow":"gold"}`, Err: "allow: expected []string, got string"},
		{Name: "empty entry", Cfg: `{"allow":["gold",""]}`, Err: `allow[1]: "" names nothing; write a group, a scope, group:NAME, scope:NAME or consumer:NAME`},
		{Name: "empty group", Cfg: `{"deny":["group:"]}`, Err: `deny[0]: "group:" names nothing; write a group, a scope, group:NAME, scope:NAME or consumer:NAME`},
		{Name: "spaces", Cfg: `{"allow":[" gold"]}`, Err: `allow[0]: " gold" has surrounding spaces; remove them`},
		{Name: "unknown consumer", Cfg: `{"deny":["consumer:mallory"]}`, Err: `deny[0]: no consumer named "mallory"; add it under consumers or fix the name`},
		{Name: "every bad entry", Cfg: `{"allow":["group:"," gold"],"deny":["consumer:mallory"]}`,
			Err: `allow[0]: "group:" names nothing; write a group, a scope, group:NAME, scope:NAME or consumer:NAME` + "\n" +
				`allow[1]: " gold" has surrounding spaces; remove them` + "\n" +
				`deny[0]: no consumer named "mallory"; add it under consumers or fix the name`},
	})
}

func TestOnRequest(t *testing.T) {
	tests := []struct {
		name     string
		cfg      string
		consumer *sdk.Consumer
		scopes   []string
		want     int // 0: continue
	}{
		{"no identity", `{"allow":["gold"]}`, nil, nil, 401},
		{"no identity deny-only", `{"deny":["banned"]}`, nil, nil, 401},
		{"allowed group", `{"allow":["gold"]}`, alice, nil, 0},
		{"second group allowed", `{"allow":["staff"]}`, alice, nil, 0},
		{"group not allowed", `{"allow":["gold"]}`, bob, nil, 403},
		{"no groups not allowed", `{"allow":["gold"]}`, carol, nil, 403},
		{"denied group", `{"deny":["silver"]}`, bob, nil, 403},
		{"not denied", `{"deny":["silver"]}`, alice, nil, 0},
		{"no groups not denied", `{"deny":["silver"]}`, carol, nil, 0},
		{"deny wins", `{"allow":["gold"],"deny":["staff"]}`, alice, nil, 403},
		{"scope allowed without consumer", `{"allow":["read"]}`, nil, []string{"write", "read"}, 0},
		{"scope not allowed", `{"allow":["admin"]}`, nil, []string{"read"}, 403},
		{"scope denied", `{"deny":["admin"]}`, nil, []string{"admin"}, 403},
		{"scope: prefix ignores groups", `{"allow":["scope:gold"]}`, alice, nil, 403},
		{"scope: prefix matches scope", `{"allow":["scope:gold"]}`, nil, []string{"gold"}, 0},
		{"group: prefix ignores scopes", `{"allow":["group:read"]}`, carol, []string{"read"}, 403},
		{"group: prefix matches group", `{"allow":["group:gold"]}`, alice, []string{"read"}, 0},
		{"bare matches scope with consumer", `{"allow":["read"]}`, carol, []string{"read"}, 0},
		{"scope with colon", `{"allow":["read:users"]}`, nil, []string{"read:users"}, 0},
		{"consumer allowed", `{"allow":["consumer:bob"]}`, bob, nil, 0},
		{"consumer not allowed", `{"allow":["consumer:bob"]}`, alice, nil, 403},
		{"consumer denied", `{"deny":["consumer:alice"]}`, alice, nil, 403},
		{"consumer name is not a group", `{"allow":["alice"]}`, alice, nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, "r", tt.cfg)
			r := plugintest.Run(t, f, identified(tt.consumer, tt.scopes))
			if tt.want == 0 {
				if r.Status != sdk.Continue {
					t.Fatalf("Stop %d %s, want Continue", r.Code, r.Body)
				}
				return
			}
			if r.Status != sdk.Stop || r.Code != tt.want {
				t.Fatalf("got %v %d, want Stop %d", r.Status, r.Code, tt.want)
			}
			msg := map[int]string{401: "unauthenticated", 403: "forbidden"}[tt.want]
			if body := r.Body; !strings.Contains(body, `"error":"`+msg+`"`) {
				t.Fatalf("body = %s, want error %q", body, msg)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	f := mustNew(t, "", `{"allow":["gold"]}`)
	get := func(reason string) uint64 {
		return metrics.GetOrCreateCounter(`weir_auth_failures_total{plugin="acl",route="_global",reason="` + reason + `"}`).Get()
	}
	u0, f0 := get("unauthenticated"), get("forbidden")
	for _, cons := range []*sdk.Consumer{nil, bob, alice} {
		plugintest.Run(t, f, identified(cons, nil))
	}
	if d := get("unauthenticated") - u0; d != 1 {
		t.Errorf("unauthenticated moved by %d, want 1", d)
	}
	if d := get("forbidden") - f0; d != 1 {
		t.Errorf("forbidden moved by %d, want 1", d)
	}
}

func TestRegistered(t *testing.T) { plugintest.WantRegistered(t, "acl") }

func TestOnRequestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	f := mustNew(t, "r", `{"allow":["gold","scope:read"],"deny":["banned"]}`)
	for _, tc := range []struct {
		name     string
		consumer *sdk.Consumer
		scopes   []string
		want     sdk.Status
	}{
		{"allowed group", alice, nil, sdk.Continue},
		{"allowed scope", nil, []string{"x", "read"}, sdk.Continue},
		{"forbidden", bob, nil, sdk.Stop},
		{"unauthenticated", nil, nil, sdk.Stop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := plugintest.NewCtx(identified(tc.consumer, tc.scopes))
			defer sdk.ReleaseCtx(c)
			plugintest.WantOnRequestAllocs(t, f, c, tc.want, 403)
		})
	}
}
