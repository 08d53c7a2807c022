package ratelimit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/sdk"
)

// fakeRedis stands in for a configured `redis:` section in config tests;
// New does no I/O, so it is never called.
type fakeRedis struct{ rueidis.Client }

func TestConfig(t *testing.T) {
	withRedis := &sdk.Build{Route: "r", Redis: fakeRedis{}}
	noRedis := &sdk.Build{Route: "r"}
	tests := []struct {
		name  string
		b     *sdk.Build
		json  string
		err   string // exact error; "" = valid
		check func(t *testing.T, c *config)
	}{
		{name: "minimal", json: `{"rate":100,"per":"1s","burst":100}`, check: func(t *testing.T, c *config) {
			l := c.limits[0]
			if l.T != int64(10*time.Millisecond) || l.tau != int64(time.Second) || l.burst != 100 {
				t.Errorf("limit = %+v", l)
			}
			if c.policy != policyLocal || c.key.String() != "consumer" || c.maxKeys != defMaxKeys {
				t.Errorf("defaults: policy %d key %s maxKeys %d", c.policy, c.key.String(), c.maxKeys)
			}
		}},
		{name: "burst defaults to rate", json: `{"rate":2.5,"per":"1s"}`, check: func(t *testing.T, c *config) {
			if c.limits[0].burst != 3 {
				t.Errorf("burst = %d, want 3", c.limits[0].burst)
			}
		}},
		{name: "fractional rate", json: `{"rate":0.5,"per":"1s","burst":1}`, check: func(t *testing.T, c *config) {
			if c.limits[0].T != int64(2*time.Second) {
				t.Errorf("T = %d", c.limits[0].T)
			}
		}},
		{name: "limits list", json: `{"limits":[{"rate":10,"per":"1s"},{"rate":1000,"per":"1h","burst":50}],"key":"consumer+route"}`,
			check: func(t *testing.T, c *config) {
				if len(c.limits) != 2 || c.limits[1].burst != 50 || c.limits[1].T != int64(3600*time.Millisecond) {
					t.Errorf("limits = %+v", c.limits)
				}
				if c.key.String() != "consumer+route" {
					t.Errorf("key = %s", c.key.String())
				}
			}},
		{name: "redis full", b: withRedis,
			json: `{"rate":100,"per":"1s","policy":"redis","on_store_failure":"deny","nodes":3,"timeout":"50ms","hybrid":{"batch":10,"max_hold":"500ms"}}`,
			check: func(t *testing.T, c *config) {
				if c.policy != policyRedis || c.onFailure != failDeny || c.nodes != 3 || c.timeout != 50*time.Millisecond ||
					c.batch != 10 || c.maxHold != 500*time.Millisecond {
					t.Errorf("config = %+v", c)
				}
			}},
		{name: "redis defaults", b: withRedis, json: `{"rate":1,"per":"1m","policy":"redis"}`, check: func(t *testing.T, c *config) {
			if c.onFailure != failLocal || c.nodes != 0 || c.timeout != defTimeout || c.batch != 0 {
				t.Errorf("config = %+v", c)
			}
		}},
		{name: "key list", json: `{"rate":1,"per":"1s","key":["ip","header:x-tenant"]}`, check: func(t *testing.T, c *config) {
			if c.key.String() != "ip+header:X-Tenant" {
				t.Errorf("key = %s", c.key.String())
			}
		}},
		{name: "max_keys", json: `{"rate":1,"per":"1s","max_keys":10}`, check: func(t *testing.T, c *config) {
			if c.maxKeys != 10 {
				t.Errorf("maxKeys = %d", c.maxKeys)
			}
		}},

		{name: "empty", json: ``, err: `rate must be > 0: set rate, per and burst (e.g. {rate: 100, per: "1s", burst: 100}) or a limits list`},
		{name: "zero rate", json: `{"rate":0,"per":"1s"}`, err: "rate must be > 0"},
		{name: "negative rate", json: `{"rate":-1,"per":"1s"}`, err: "rate must be > 0"},
		{name: "missing per", json: `{"rate":1}`, err: `per must be a duration such as "1s"`},
		{name: "numeric per", json: `{"rate":1,"per":1}`, err: `per must be a duration such as "1s"`},
		{name: "bad per", json: `{"rate":1,"per":"soon"}`, err: `per must be a duration such as "1s"`},
		{name: "tiny per", json: `{"rate":1,"per":"10us"}`, err: `per must be between "1ms" and "8784h"`},
		{name: "zero burst", json: `{"rate":1,"per":"1s","burst":0}`, err: "burst must be >= 1"},
		{name: "huge burst", json: `{"rate":1,"per":"1s","burst":2000000000}`, err: "burst must be <= 1000000000"},
		{name: "rate too high", json: `{"rate":2000000,"per":"1s"}`, err: "rate is too high for per: at most one token per microsecond (1000000 per 1s)"},
		{name: "refill too long", json: `{"rate":1,"per":"8000h","burst":1000}`,
			err: "burst * per / rate (the time to refill the bucket) must be at most 52 days: lower burst or raise rate"},
		{name: "both forms", json: `{"rate":1,"per":"1s","limits":[{"rate":1,"per":"1s"}]}`, err: "use either rate/per/burst or limits, not both"},
		{name: "bad limit entry", json: `{"limits":[{"rate":1,"per":"1s"},{"rate":0,"per":"1s"}]}`, err: "limits[1].rate must be > 0"},
		{name: "bad limit per", json: `{"limits":[{"rate":1,"per":"x"}]}`, err: `limits[0].per must be a duration such as "1s"`},
		{name: "too many limits", json: `{"limits":[` + strings.Repeat(`{"rate":1,"per":"1s"},`, 8) + `{"rate":1,"per":"1s"}]}`,
			err: "limits may hold at most 8 entries, got 9"},
		{name: "unknown key", json: `{"rate":1,"per":"1s","rte":2}`, err: `unknown field "rte"`},
		{name: "bad key part", json: `{"rate":1,"per":"1s","key":"user"}`, err: `key: unknown part "user": use consumer, ip, route or header:NAME (combine with +)`},
		{name: "empty header", json: `{"rate":1,"per":"1s","key":"header:"}`, err: "key: header: needs a header name, e.g. header:X-Api-Key"},
		{name: "bad header", json: `{"rate":1,"per":"1s","key":"header:a b"}`, err: `key: "a b" is not a valid header name`},
		{name: "dup key", json: `{"rate":1,"per":"1s","key":"ip+ip"}`, err: "key: ip is listed twice"},
		{name: "empty key list", json: `{"rate":1,"per":"1s","key":[]}`, err: "key must not be an empty list: use consumer, ip, route or header:NAME"},
		{name: "numeric key", json: `{"rate":1,"per":"1s","key":5}`, err: `key must be a string such as "consumer+route" or a list of strings`},
		{name: "bad policy", json: `{"rate":1,"per":"1s","policy":"memcached"}`, err: `policy must be local or redis, got "memcached"`},
		{name: "redis without section", b: noRedis, json: `{"rate":1,"per":"1s","policy":"redis"}`,
			err: "policy: redis needs a redis section in the gateway config"},
		{name: "failure on local", json: `{"rate":1,"per":"1s","on_store_failure":"deny"}`, err: "on_store_failure only applies to policy: redis"},
		{name: "nodes on local", json: `{"rate":1,"per":"1s","nodes":2}`, err: "nodes only applies to policy: redis"},
		{name: "timeout on local", json: `{"rate":1,"per":"1s","timeout":"1s"}`, err: "timeout only applies to policy: redis"},
		{name: "hybrid on local", json: `{"rate":1,"per":"1s","hybrid":{"batch":2}}`, err: "hybrid only applies to policy: redis"},
		{name: "bad failure", b: withRedis, json: `{"rate":1,"per":"1s","policy":"redis","on_store_failure":"panic"}`,
			err: `on_store_failure must be allow, deny or local, got "panic"`},
		{name: "zero nodes", b: withRedis, json: `{"rate":1,"per":"1s","policy":"redis","nodes":0}`,
			err: "nodes must be between 1 and 1024 (or left out to learn the node count from redis)"},
		{name: "bad timeout", b: withRedis, json: `{"rate":1,"per":"1s","policy":"redis","timeout":20}`, err: `timeout must be a duration such as "20ms"`},
		{name: "long timeout", b: withRedis, json: `{"rate":1,"per":"1s","policy":"redis","timeout":"1m"}`,
			err: `timeout must be at most "10s": it is added to a request's time when redis is slow`},
		{name: "zero max_keys", json: `{"rate":1,"per":"1s","max_keys":0}`, err: "max_keys must be >= 1"},
		{name: "hybrid no batch", b: withRedis, json: `{"rate":10,"per":"1s","policy":"redis","hybrid":{}}`,
			err: "hybrid.batch must be set, e.g. hybrid: {batch: 10}"},
		{name: "hybrid batch 1", b: withRedis, json: `{"rate":10,"per":"1s","policy":"redis","hybrid":{"batch":1}}`,
			err: "hybrid.batch must be between 2 and 10000"},
		{name: "hybrid batch over burst", b: withRedis, json: `{"rate":10,"per":"1s","burst":5,"policy":"redis","hybrid":{"batch":6}}`,
			err: "hybrid.batch must not exceed burst (5): a batch larger than the bucket is never granted"},
		{name: "hybrid bad hold", b: withRedis, json: `{"rate":10,"per":"1s","policy":"redis","hybrid":{"batch":2,"max_hold":"x"}}`,
			err: `hybrid.max_hold must be a duration such as "1s"`},
		{name: "wrong type", json: `{"rate":"fast","per":"1s"}`, err: "rate: expected float64, got string"},
		// Every wrong key in one run, not one per run.
		{name: "rate per burst all wrong", json: `{"rate":0,"per":"soon","burst":-1}`,
			err: "rate must be > 0\nper must be a duration such as \"1s\"\nburst must be >= 1"},
		{name: "in a limits entry", json: `{"limits":[{"rate":1,"per":"1s"},{"rate":-1,"per":"1d","burst":0}]}`,
			err: "limits[1].rate must be > 0\nlimits[1].per must be a duration such as \"1s\"\nlimits[1].burst must be >= 1"},
		{name: "wrong types of three keys", json: `{"rate":"fast","per":"1s","burst":"big","max_keys":"many"}`,
			err: "rate: expected float64, got string\nburst: expected int64, got string\nmax_keys: expected int, got string"},
		{name: "limits and other keys", json: `{"rate":0,"per":"1s","policy":"cluster","key":[]}`,
			err: "rate must be > 0\nkey must not be an empty list: use consumer, ip, route or header:NAME\npolicy must be local or redis, got \"cluster\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			if b == nil {
				b = noRedis
			}
			c, err := parseConfig(b, json.RawMessage(tt.json))
			if tt.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.err)
				}
				if err.Error() != tt.err {
					t.Fatalf("error\n got: %s\nwant: %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			// New accepts what parseConfig accepts.
			if _, err := New(b, json.RawMessage(tt.json)); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	f, ok := sdk.Lookup("rate_limit")
	if !ok {
		t.Fatal("rate_limit is not registered")
	}
	if _, err := f.New(&sdk.Build{}, json.RawMessage(`{"rate":1,"per":"1s"}`)); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprintSeparatesConfigs(t *testing.T) {
	a, _ := parseConfig(&sdk.Build{}, json.RawMessage(`{"rate":1,"per":"1s"}`))
	b, _ := parseConfig(&sdk.Build{}, json.RawMessage(`{"rate":2,"per":"1s"}`))
	c, _ := parseConfig(&sdk.Build{}, json.RawMessage(`{"rate":1,"per":"1s","key":"ip"}`))
	a2, _ := parseConfig(&sdk.Build{}, json.RawMessage(`{"rate":1,"per":"1s","burst":1}`))
	if a.fingerprint == b.fingerprint || a.fingerprint == c.fingerprint {
		t.Errorf("fingerprints collide: %s %s %s", a.fingerprint, b.fingerprint, c.fingerprint)
	}
	if a.fingerprint != a2.fingerprint {
		t.Errorf("same config, different fingerprints: %s %s", a.fingerprint, a2.fingerprint)
	}
}

func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"rate":100,"per":"1s","burst":100}`,
		`{"limits":[{"rate":10,"per":"1s"},{"rate":1000,"per":"1h"}],"key":"consumer+route"}`,
		`{"rate":1,"per":"1s","key":["ip","header:X-A"],"policy":"redis","hybrid":{"batch":1}}`,
		`{"rate":1e308,"per":"1ns"}`, `{"rate":1,"per":"-1s"}`, `null`, `[]`,
	} {
		f.Add(s)
	}
	b := &sdk.Build{Route: "r", Redis: fakeRedis{}}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseConfig(b, json.RawMessage(s))
		if err != nil {
			return
		}
		for _, l := range c.limits {
			if l.T < 1000 || l.burst < 1 || l.tau != l.burst*l.T || l.tau > maxTau {
				t.Fatalf("accepted an invalid limit %+v from %s", l, s)
			}
		}
	})
}
