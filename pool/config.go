package pool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/weirgw/weir/proxy/config"
)

// TargetConfig is one upstream address of a service.
type TargetConfig struct {
	// URL is http://host[:port] or https://host[:port], without path, query
	// or user info. The port defaults to 80 / 443.
	URL string
	// Weight is the member's share of traffic, 0..MaxWeight. 0 keeps the
	// target registered but sends it nothing (draining); the proxy applies
	// the config default (100) before calling the pool.
	Weight int
}

// ActiveConfig probes each target with GET Path every Interval. A zero
// field takes its default from proxy/config/defaults.go (the one table).
type ActiveConfig struct {
	Path           string
	Interval       time.Duration
	Timeout        time.Duration // connect and whole response
	HealthyAfter   int           // consecutive successes bring a target back
	UnhealthyAfter int           // consecutive failures take it out
	ExpectStatus   []int         // empty: any 2xx or 3xx
}

// PassiveConfig takes a target out after consecutive failures seen on real
// traffic (Member.End with ok=false). A zero field takes its default from
// proxy/config/defaults.go.
type PassiveConfig struct {
	UnhealthyAfter int           // consecutive failed requests
	HealthyAfter   time.Duration // out of rotation this long, then tried again
}

// HealthConfig holds both kinds of health checking; a nil part is off.
type HealthConfig struct {
	Active  *ActiveConfig
	Passive *PassiveConfig
}

// BreakerConfig configures the per-target circuit breaker. A zero field
// takes its default from proxy/config/defaults.go.
type BreakerConfig struct {
	FailureRatio float64       // open when failures/requests >= this ...
	MinRequests  int           // ... over at least this many requests ...
	Window       time.Duration // ... in the last Window
	OpenFor      time.Duration // then one probe request (half-open)
}

// ServiceConfig is what the proxy builds from one `services:` entry.
type ServiceConfig struct {
	Name    string
	Targets []TargetConfig
	// Balancer is round_robin (default when empty), least_conn,
	// consistent_hash or random.
	Balancer string
	Health   HealthConfig
	Breaker  *BreakerConfig // nil = no breaker
	// TLS is the client TLS of https:// targets for active health checks
	// (nil: system roots, the target's host as server name), the same
	// settings the proxy forwards with. TLSID names its content: a reload
	// with an equal TLSID keeps the running checkers.
	TLS   *tls.Config
	TLSID string
}

// MaxWeight is the largest target weight. Zero fields of the configs
// above take their defaults from the one table, proxy/config/defaults.go.
const MaxWeight = 65535

// balancerKind names one of the four balancers.
type balancerKind uint8

const (
	kindRoundRobin balancerKind = iota
	kindLeastConn
	kindConsistentHash
	kindRandom
)

var balancerNames = [...]string{"round_robin", "least_conn", "consistent_hash", "random"}

func (k balancerKind) String() string { return balancerNames[k] }

func parseBalancer(s string) (balancerKind, error) {
	if s == "" {
		return kindRoundRobin, nil
	}
	for i, n := range balancerNames {
		if s == n {
			return balancerKind(i), nil
		}
	}
	return 0, fmt.Errorf("balancer %q is unknown (use round_robin, least_conn, consistent_hash or random)", s)
}

// activeCfg is a validated ActiveConfig. Comparable, so a reload can tell
// whether a running checker already does what the new snapshot asks.
type activeCfg struct {
	path           string
	interval       time.Duration
	timeout        time.Duration
	healthyAfter   int
	unhealthyAfter int
	expect         statusSet
	tlsID          string // ServiceConfig.TLSID: other TLS settings make another checker
}

// statusSet is a bitmap of the HTTP status codes 100..611.
type statusSet [8]uint64

func (s *statusSet) add(code int) { c := code - 100; s[c>>6] |= 1 << (c & 63) }

func (s *statusSet) has(code int) bool {
	c := code - 100
	if c < 0 || c >= 512 {
		return false
	}
	return s[c>>6]&(1<<(c&63)) != 0
}

type passiveCfg struct {
	unhealthyAfter int32
	healthyAfter   int64 // nanoseconds
}

// breakerCfg is a validated BreakerConfig, durations in nanoseconds of the
// registry clock.
type breakerCfg struct {
	ratio       float64
	minRequests uint64
	width       int64 // one of nBuckets buckets: window / nBuckets
	openFor     int64
}

// serviceSpec is a validated ServiceConfig.
type serviceSpec struct {
	name    string
	targets []target
	weights []int
	kind    balancerKind
	active  *activeCfg
	passive *passiveCfg
	breaker *breakerCfg
	tls     *tls.Config
}

func compileService(cfg ServiceConfig) (*serviceSpec, error) {
	if cfg.Name == "" {
		return nil, errors.New("service name must not be empty")
	}
	sp := &serviceSpec{name: cfg.Name, tls: cfg.TLS}
	var err error
	if sp.kind, err = parseBalancer(cfg.Balancer); err != nil {
		return nil, err
	}
	seen := make(map[string]string, len(cfg.Targets))
	for _, tc := range cfg.Targets {
		t, err := compileTarget(tc)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[t.url]; dup {
			if first == tc.URL {
				return nil, fmt.Errorf("target %q is listed twice", tc.URL)
			}
			return nil, fmt.Errorf("target %q is listed twice (as %q and %q)", t.url, first, tc.URL)
		}
		seen[t.url] = tc.URL
		sp.targets = append(sp.targets, t)
		sp.weights = append(sp.weights, tc.Weight)
	}
	if a := cfg.Health.Active; a != nil {
		if sp.active, err = compileActive(*a); err != nil {
			return nil, err
		}
		sp.active.tlsID = cfg.TLSID
	}
	if p := cfg.Health.Passive; p != nil {
		if sp.passive, err = compilePassive(*p); err != nil {
			return nil, err
		}
	}
	if b := cfg.Breaker; b != nil {
		if sp.breaker, err = compileBreaker(*b); err != nil {
			return nil, err
		}
	}
	return sp, nil
}

func compileTarget(tc TargetConfig) (target, error) {
	t, err := parseTargetURL(tc.URL)
	if err != nil {
		return target{}, fmt.Errorf("target %q: %w", tc.URL, err)
	}
	if tc.Weight < 0 || tc.Weight > MaxWeight {
		return target{}, fmt.Errorf("target %q: weight %d must be between 0 and %d", tc.URL, tc.Weight, MaxWeight)
	}
	return t, nil
}

func compileActive(a ActiveConfig) (*activeCfg, error) {
	c := &activeCfg{
		path:           a.Path,
		interval:       a.Interval,
		timeout:        a.Timeout,
		healthyAfter:   a.HealthyAfter,
		unhealthyAfter: a.UnhealthyAfter,
	}
	if c.path == "" {
		c.path = config.DefaultActivePath
	}
	if c.path[0] != '/' {
		return nil, fmt.Errorf("health_check.active.path %q must start with /", a.Path)
	}
	for i := 0; i < len(c.path); i++ {
		if b := c.path[i]; b <= ' ' || b == 0x7f {
			return nil, fmt.Errorf("health_check.active.path %q must not contain spaces or control characters", a.Path)
		}
	}
	if c.interval < 0 {
		return nil, fmt.Errorf("health_check.active.interval must be > 0, got %s", a.Interval)
	}
	if c.interval == 0 {
		c.interval = config.DefaultActiveInterval
	}
	if c.timeout < 0 {
		return nil, fmt.Errorf("health_check.active.timeout must be > 0, got %s", a.Timeout)
	}
	if c.timeout == 0 {
		c.timeout = config.DefaultActiveTimeout
	}
	if c.healthyAfter < 0 {
		return nil, fmt.Errorf("health_check.active.healthy_after must be >= 1, got %d", a.HealthyAfter)
	}
	if c.healthyAfter == 0 {
		c.healthyAfter = config.DefaultActiveHealthyAfter
	}
	if c.unhealthyAfter < 0 {
		return nil, fmt.Errorf("health_check.active.unhealthy_after must be >= 1, got %d", a.UnhealthyAfter)
	}
	if c.unhealthyAfter == 0 {
		c.unhealthyAfter = config.DefaultActiveUnhealthyAfter
	}
	for _, code := range a.ExpectStatus {
		if code < 100 || code > 599 {
			return nil, fmt.Errorf("health_check.active.expect_status: %d is not an HTTP status (100-599)", code)
		}
		c.expect.add(code)
	}
	if len(a.ExpectStatus) == 0 {
		for code := 200; code < 400; code++ {
			c.expect.add(code)
		}
	}
	return c, nil
}

func compilePassive(p PassiveConfig) (*passiveCfg, error) {
	if p.UnhealthyAfter < 0 || p.UnhealthyAfter > 1<<30 {
		return nil, fmt.Errorf("health_check.passive.unhealthy_after must be >= 1, got %d", p.UnhealthyAfter)
	}
	if p.HealthyAfter < 0 {
		return nil, fmt.Errorf("health_check.passive.healthy_after must be > 0, got %s", p.HealthyAfter)
	}
	c := &passiveCfg{unhealthyAfter: int32(p.UnhealthyAfter), healthyAfter: int64(p.HealthyAfter)}
	if c.unhealthyAfter == 0 {
		c.unhealthyAfter = config.DefaultPassiveUnhealthy
	}
	if c.healthyAfter == 0 {
		c.healthyAfter = int64(config.DefaultPassiveHealthyAfter * time.Millisecond)
	}
	return c, nil
}

func compileBreaker(b BreakerConfig) (*breakerCfg, error) {
	if b.FailureRatio < 0 || b.FailureRatio > 1 || b.FailureRatio != b.FailureRatio {
		return nil, fmt.Errorf("circuit_breaker.failure_ratio must be between 0 and 1, got %s",
			strconv.FormatFloat(b.FailureRatio, 'g', -1, 64))
	}
	if b.MinRequests < 0 || b.MinRequests > maxMinRequests {
		return nil, fmt.Errorf("circuit_breaker.min_requests must be between 1 and %d, got %d", maxMinRequests, b.MinRequests)
	}
	if b.Window < 0 {
		return nil, fmt.Errorf("circuit_breaker.window must be > 0, got %s", b.Window)
	}
	if b.OpenFor < 0 {
		return nil, fmt.Errorf("circuit_breaker.open_for must be > 0, got %s", b.OpenFor)
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = config.DefaultFailureRatio
	}
	if b.MinRequests == 0 {
		b.MinRequests = config.DefaultMinRequests
	}
	if b.Window == 0 {
		b.Window = config.DefaultWindow
	}
	if b.OpenFor == 0 {
		b.OpenFor = config.DefaultOpenFor
	}
	c := &breakerCfg{
		ratio:       b.FailureRatio,
		minRequests: uint64(b.MinRequests),
		width:       max(int64(b.Window)/nBuckets, 1),
		openFor:     int64(b.OpenFor),
	}
	return c, nil
}
