package pool

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/proxy/config"
)

func TestParseTargetURL(t *testing.T) {
	good := []struct {
		in             string
		url, host, adr string
		tls, ip, ip6   bool
	}{
		{"http://127.0.0.1:9001", "http://127.0.0.1:9001", "127.0.0.1:9001", "127.0.0.1:9001", false, true, false},
		{"http://127.0.0.1:9001/", "http://127.0.0.1:9001", "127.0.0.1:9001", "127.0.0.1:9001", false, true, false},
		{"HTTP://Api.Example.COM:80/", "http://api.example.com:80", "api.example.com", "api.example.com:80", false, false, false},
		{"http://api", "http://api:80", "api", "api:80", false, false, false},
		{"https://api.example.com", "https://api.example.com:443", "api.example.com", "api.example.com:443", true, false, false},
		{"https://api.example.com:8443", "https://api.example.com:8443", "api.example.com:8443", "api.example.com:8443", true, false, false},
		{"http://[::1]:8080", "http://[::1]:8080", "[::1]:8080", "[::1]:8080", false, true, true},
		{"http://[::1]", "http://[::1]:80", "[::1]", "[::1]:80", false, true, true},
		{"http://[0:0::1]:81", "http://[::1]:81", "[::1]:81", "[::1]:81", false, true, true},
		{"http://my_svc.consul:8500", "http://my_svc.consul:8500", "my_svc.consul:8500", "my_svc.consul:8500", false, false, false},
		{"http://host.:65535", "http://host.:65535", "host.:65535", "host.:65535", false, false, false},
		{"http://LOCALHOST:9001/", "http://localhost:9001", "localhost:9001", "localhost:9001", false, false, false},
		{"http://127.0.0.1:80", "http://127.0.0.1:80", "127.0.0.1", "127.0.0.1:80", false, true, false},
		{"https://[0:0:0:0:0:0:0:1]:443/", "https://[::1]:443", "[::1]", "[::1]:443", true, true, true},
	}
	for _, c := range good {
		got, err := parseTargetURL(c.in)
		if err != nil {
			t.Errorf("%q: unexpected error %v", c.in, err)
			continue
		}
		want := target{url: c.url, host: c.host, addr: c.adr, tls: c.tls, ip: c.ip, ip6: c.ip6}
		if got != want {
			t.Errorf("%q: got %+v, want %+v", c.in, got, want)
		}
		// The proxy keys a target's transport, and the config (GET
		// /config, the admin API) names it, by the config's canonical
		// form: the pool's name for it must be the same string.
		if canon, err := config.CanonicalTargetURL(c.in); err != nil || canon != got.url {
			t.Errorf("%q: the config's canonical form is %q (%v), the pool's %q", c.in, canon, err, got.url)
		}
	}

	bad := []struct{ in, err string }{
		{"", "url must start with http://, https://, h2c://, grpc://, h2:// or grpcs://"},
		{"127.0.0.1:9001", "url must start with http://, https://, h2c://, grpc://, h2:// or grpcs://"},
		{"ftp://a:21", `url scheme "ftp" is not supported (use http, https, h2c, grpc, h2 or grpcs)`},
		{"http://", "url has no host"},
		{"http://:80", "url has no host"},
		{"http://a:", "url has an empty port"},
		{"http://a:0", `port "0" must be a number between 1 and 65535`},
		{"http://a:65536", `port "65536" must be a number between 1 and 65535`},
		{"http://a:080", `port "080" must be a number between 1 and 65535`},
		{"http://a:http", `port "http" must be a number between 1 and 65535`},
		{"http://a:+80", `port "+80" must be a number between 1 and 65535`},
		{"http://a:80:81", "url has an IPv6 address without [brackets]"},
		{"http://[::1", "url has an unclosed [ in its host"},
		{"http://[::1]x", `url has "x" after the IPv6 address`},
		{"http://[::1]:", "url has an empty port"},
		{"http://[fe80::1%eth0]:80", `host "fe80::1%eth0" is not a valid IPv6 address (zones are not supported)`},
		{"http://a:80/api", "url must not have a path, query or fragment (give scheme://host:port only)"},
		{"http://a:80?x=1", "url must not have a path, query or fragment (give scheme://host:port only)"},
		{"http://a:80#f", "url must not have a path, query or fragment (give scheme://host:port only)"},
		{"http://a:80//", "url must not have a path, query or fragment (give scheme://host:port only)"},
		{"http://user:pw@a:80", "url must not contain user info"},
		{"http://a b:80", `host "a b" is not a valid host name`},
		{"http://a..b", `host "a..b" is not a valid host name`},
		{"http://a*b", `host "a*b" is not a valid host name`},
		{"http://[zz::1]:80", `host "zz::1" is not a valid IPv6 address (zones are not supported)`},
		{"http://" + strings.Repeat("a", 64) + ".com", `host "` + strings.Repeat("a", 64) + `.com" is not a valid host name`},
	}
	for _, c := range bad {
		_, err := parseTargetURL(c.in)
		if err == nil {
			t.Errorf("%q: expected error %q, got none", c.in, c.err)
			continue
		}
		if err.Error() != c.err {
			t.Errorf("%q: error %q, want %q", c.in, err, c.err)
		}
	}
}

func TestCompileServiceGood(t *testing.T) {
	sp, err := compileService(ServiceConfig{
		Name:    "users",
		Targets: []TargetConfig{{URL: "http://127.0.0.1:9001", Weight: 100}, {URL: "http://127.0.0.1:9002", Weight: 0}},
		Health: HealthConfig{
			Active:  &ActiveConfig{},
			Passive: &PassiveConfig{},
		},
		Breaker: &BreakerConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sp.kind != kindRoundRobin {
		t.Errorf("empty balancer: got %s, want round_robin", sp.kind)
	}
	a := sp.active
	if a.path != config.DefaultActivePath || a.interval != config.DefaultActiveInterval || a.timeout != config.DefaultActiveTimeout ||
		a.healthyAfter != 2 || a.unhealthyAfter != 3 {
		t.Errorf("active defaults: %+v", a)
	}
	for code, want := range map[int]bool{199: false, 200: true, 204: true, 302: true, 399: true, 400: false, 503: false} {
		if a.expect.has(code) != want {
			t.Errorf("default expect_status has(%d) = %v, want %v", code, !want, want)
		}
	}
	if p := sp.passive; p.unhealthyAfter != 5 || p.healthyAfter != int64(30*time.Second) {
		t.Errorf("passive defaults: %+v", p)
	}
	if b := sp.breaker; b.ratio != 0.5 || b.minRequests != 20 || b.width != int64(time.Second) || b.openFor != int64(30*time.Second) {
		t.Errorf("breaker defaults: %+v", b)
	}

	sp, err = compileService(ServiceConfig{
		Name:     "x",
		Balancer: "consistent_hash",
		Health:   HealthConfig{Active: &ActiveConfig{Path: "/healthz?deep=1", ExpectStatus: []int{204, 418}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sp.kind != kindConsistentHash || len(sp.targets) != 0 {
		t.Errorf("got kind %s with %d targets", sp.kind, len(sp.targets))
	}
	if !sp.active.expect.has(204) || !sp.active.expect.has(418) || sp.active.expect.has(200) {
		t.Errorf("expect_status [204 418] not honoured: %v", sp.active.expect)
	}
}

func TestCompileServiceErrors(t *testing.T) {
	base := func() ServiceConfig {
		return ServiceConfig{Name: "users", Targets: []TargetConfig{{URL: "http://127.0.0.1:9001", Weight: 1}}}
	}
	cases := []struct {
		name string
		edit func(*ServiceConfig)
		err  string
	}{
		{"no name", func(c *ServiceConfig) { c.Name = "" }, "service name must not be empty"},
		{"balancer", func(c *ServiceConfig) { c.Balancer = "fastest" },
			`balancer "fastest" is unknown (use round_robin, least_conn, consistent_hash or random)`},
		{"bad url", func(c *ServiceConfig) { c.Targets[0].URL = "127.0.0.1:9001" },
			`target "127.0.0.1:9001": url must start with http://, https://, h2c://, grpc://, h2:// or grpcs://`},
		{"negative weight", func(c *ServiceConfig) { c.Targets[0].Weight = -1 },
			`target "http://127.0.0.1:9001": weight -1 must be between 0 and 65535`},
		{"huge weight", func(c *ServiceConfig) { c.Targets[0].Weight = 70000 },
			`target "http://127.0.0.1:9001": weight 70000 must be between 0 and 65535`},
		{"duplicate", func(c *ServiceConfig) { c.Targets = append(c.Targets, c.Targets[0]) },
			`target "http://127.0.0.1:9001" is listed twice`},
		{"duplicate after normalization", func(c *ServiceConfig) {
			c.Targets = append(c.Targets, TargetConfig{URL: "HTTP://127.0.0.1:9001/", Weight: 1})
		}, `target "http://127.0.0.1:9001" is listed twice (as "http://127.0.0.1:9001" and "HTTP://127.0.0.1:9001/")`},
		{"active path", func(c *ServiceConfig) { c.Health.Active = &ActiveConfig{Path: "healthz"} },
			`health_check.active.path "healthz" must start with /`},
		{"active path space", func(c *ServiceConfig) { c.Health.Active = &ActiveConfig{Path: "/a b"} },
			`health_check.active.path "/a b" must not contain spaces or control characters`},
		{"active interval", func(c *ServiceConfig) { c.Health.Active = &ActiveConfig{Interval: -1} },
			"health_check.active.interval must be > 0, got -1ns"},
		{"active timeout", func(c *ServiceConfig) { c.Health.Active = &ActiveConfig{Timeout: -time.Millisecond} },
			"health_check.active.timeout must be > 0, got -1ms"},
		{"active healthy_after", func(c *ServiceConfig) { c.Health.Active = &ActiveConfig{HealthyAfter: -2} },
			"health_check.active.healthy_after must be >= 1, got -2"},
		{"active unhealthy_after", func(c *ServiceConfig) { c.Health.Active = &ActiveConfig{UnhealthyAfter: -3} },
			"health_check.active.unhealthy_after must be >= 1, got -3"},
		{"active expect", func(c *ServiceConfig) { c.Health.Active = &ActiveConfig{ExpectStatus: []int{200, 600}} },
			"health_check.active.expect_status: 600 is not an HTTP status (100-599)"},
		{"passive unhealthy_after", func(c *ServiceConfig) { c.Health.Passive = &PassiveConfig{UnhealthyAfter: -1} },
			"health_check.passive.unhealthy_after must be >= 1, got -1"},
		{"passive healthy_after", func(c *ServiceConfig) { c.Health.Passive = &PassiveConfig{HealthyAfter: -time.Second} },
			"health_check.passive.healthy_after must be > 0, got -1s"},
		{"breaker ratio", func(c *ServiceConfig) { c.Breaker = &BreakerConfig{FailureRatio: 1.5} },
			"circuit_breaker.failure_ratio must be between 0 and 1, got 1.5"},
		{"breaker ratio NaN", func(c *ServiceConfig) { c.Breaker = &BreakerConfig{FailureRatio: math.NaN()} },
			"circuit_breaker.failure_ratio must be between 0 and 1, got NaN"},
		{"breaker min_requests", func(c *ServiceConfig) { c.Breaker = &BreakerConfig{MinRequests: -5} },
			"circuit_breaker.min_requests must be between 1 and 1000000, got -5"},
		{"breaker min_requests huge", func(c *ServiceConfig) { c.Breaker = &BreakerConfig{MinRequests: 2_000_000} },
			"circuit_breaker.min_requests must be between 1 and 1000000, got 2000000"},
		{"breaker window", func(c *ServiceConfig) { c.Breaker = &BreakerConfig{Window: -time.Second} },
			"circuit_breaker.window must be > 0, got -1s"},
		{"breaker open_for", func(c *ServiceConfig) { c.Breaker = &BreakerConfig{OpenFor: -time.Second} },
			"circuit_breaker.open_for must be > 0, got -1s"},
	}
	r := NewRegistry()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.edit(&cfg)
			s, err := r.NewService(cfg)
			if err == nil {
				s.Close()
				t.Fatalf("expected error %q, got none", c.err)
			}
			if err.Error() != c.err {
				t.Fatalf("error %q\nwant  %q", err, c.err)
			}
		})
	}
	if len(r.states) != 0 {
		t.Errorf("a failed NewService left references: %d states", len(r.states))
	}
}

// FuzzParseTargetURL: target URLs reach the pool from the admin API
// (service discovery), so arbitrary bytes must never panic, and whatever is
// accepted must be a fixed point of normalization.
func FuzzParseTargetURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:9001", "https://api.example.com", "http://[::1]:8080/", "HTTP://A:80",
		"http://a:0", "http://user@a", "http://a/b", "http://[fe80::1%25eth0]:80", "http://a%20b", "https://xn--bcher-kva.example:443",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parseTargetURL(raw)
		if err != nil {
			return
		}
		again, err := parseTargetURL(tg.url)
		if err != nil {
			t.Fatalf("%q accepted as %q, which is then refused: %v", raw, tg.url, err)
		}
		if again != tg {
			t.Fatalf("%q: normalization is not stable: %+v then %+v", raw, tg, again)
		}
		if strings.ContainsAny(tg.host, "/?#@ ") {
			t.Fatalf("%q: host %q carries URL syntax", raw, tg.host)
		}
	})
}
