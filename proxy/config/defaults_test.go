package config

import (
	"reflect"
	"testing"
	"time"
)

func d(v time.Duration) Duration { return Duration(v) }

func TestApplyDefaultsEmpty(t *testing.T) {
	c := &Config{}
	ApplyDefaults(c)
	want := &Config{
		Listen: Listeners{{Address: ":8080"}},
		Server: Server{
			MaxHeaderBytes:       8192,
			MaxBodyBytes:         10485760,
			ReadTimeout:          d(30 * time.Second),
			WriteTimeout:         d(30 * time.Second),
			IdleTimeout:          d(60 * time.Second),
			DrainTimeout:         d(10 * time.Second),
			DrainGrace:           d(2 * time.Second),
			MaxConns:             262144,
			MaxConcurrentStreams: 100,
			MaxWebSockets:        16384,
			WebSocket:            &WebSocket{IdleTimeout: d(60 * time.Second)},
			GCHeapFloor:          ptr(int64(64 << 20)),
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

func TestApplyDefaultsSections(t *testing.T) {
	c := mustParse(t, `
redis: {addrs: ["h:1"]}
services:
  - name: a
    targets: [{url: "HTTP://Example.COM"}, {url: "https://h", weight: 0}, {url: "not a url"}]
    health_check: {active: {}, passive: {}}
    circuit_breaker: {}
  - name: b
    balancer: consistent_hash
    retries: 0
routes:
  - name: r
    aggregate: {backends: []}
    plugins: [{name: x}, {name: y, enabled: false}]
plugins: [{name: z}]
`)
	ApplyDefaults(c)
	if c.Redis.Timeout != d(50*time.Millisecond) {
		t.Errorf("redis timeout %v", c.Redis.Timeout)
	}
	a := c.Services[0]
	wantA := Service{
		Name: "a",
		Targets: []Target{
			{URL: "http://example.com:80", Weight: ptr(100)},
			{URL: "https://h:443", Weight: ptr(0)},
			{URL: "not a url", Weight: ptr(100)}, // left for Validate
		},
		Balancer:          "round_robin",
		ConnectTimeout:    d(time.Second),
		Timeout:           d(30 * time.Second),
		Retries:           ptr(1),
		MaxConnsPerTarget: 1024,
		MaxConnWait:       d(30 * time.Second),
		HealthCheck: &HealthCheck{
			Active:  &ActiveHealthCheck{Path: "/healthz", Interval: d(5 * time.Second), Timeout: d(time.Second), HealthyAfter: 2, UnhealthyAfter: 3},
			Passive: &PassiveHealthCheck{UnhealthyAfter: 5, HealthyAfterMs: 30000},
		},
		CircuitBreaker: &CircuitBreaker{FailureRatio: 0.5, MinRequests: 20, Window: d(10 * time.Second), OpenFor: d(30 * time.Second)},
	}
	if !reflect.DeepEqual(a, wantA) {
		t.Errorf("service a\ngot  %+v\nwant %+v", a, wantA)
	}
	b := c.Services[1]
	if b.HashOn != "ip" || *b.Retries != 0 || b.HealthCheck != nil || b.CircuitBreaker != nil {
		t.Errorf("service b %+v", b)
	}
	r := c.Routes[0]
	if r.Aggregate.Timeout != d(2*time.Second) || !*r.Plugins[0].Enabled || *r.Plugins[1].Enabled || !*c.Plugins[0].Enabled {
		t.Errorf("route %+v", r)
	}
}

// Set values are kept, and applying defaults twice changes nothing.
func TestApplyDefaultsKeepsValuesAndIsIdempotent(t *testing.T) {
	c := filled()
	c.Services[0].Targets[0].URL = "http://h:1"
	c.Services[0].Targets[1].URL = "http://h:2"
	c.Services[1].Targets[0].URL = "http://h:3"
	c.Services[1].Targets[1].URL = "http://h:4"
	before := c.Clone()
	ApplyDefaults(c)
	if !reflect.DeepEqual(c, before) {
		t.Fatal("ApplyDefaults changed values that were set")
	}
	e := &Config{Services: []Service{{Name: "a", HealthCheck: &HealthCheck{Active: &ActiveHealthCheck{}}}}}
	ApplyDefaults(e)
	once := e.Clone()
	ApplyDefaults(e)
	if !reflect.DeepEqual(e, once) {
		t.Fatal("ApplyDefaults is not idempotent")
	}
}
