package ratelimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"time"

	"github.com/weirgw/weir/sdk"
)

// Limits of what a config may ask for. They keep every computation below in
// int64 nanoseconds without overflow and every Redis script argument exact.
const (
	maxLimits  = 8             // entries in `limits`
	maxBurst   = 1_000_000_000 // burst * emission interval must fit an int64
	minPer     = time.Millisecond
	maxPer     = 366 * 24 * time.Hour
	maxBatch   = 10_000
	defTimeout = 20 * time.Millisecond
	defMaxKeys = 1_000_000
	defMaxHold = time.Second
	// maxTau bounds burst*T (about 52 days) and maxNodes the node count, so
	// that a node's share, T*nodes, and every TAT stay far from int64
	// overflow.
	maxTau   = 1 << 52
	maxNodes = 1024
)

// rawConfig is the plugin's `config` object as written. Durations and the
// key are kept raw so that their errors can say exactly what to write.
type rawConfig struct {
	Rate           *float64        `json:"rate"`
	Per            json.RawMessage `json:"per"`
	Burst          *int64          `json:"burst"`
	Limits         []rawLimit      `json:"limits"`
	Key            json.RawMessage `json:"key"`
	Policy         string          `json:"policy"`
	OnStoreFailure string          `json:"on_store_failure"`
	Nodes          *int            `json:"nodes"`
	Timeout        json.RawMessage `json:"timeout"`
	MaxKeys        *int            `json:"max_keys"`
	Hybrid         *rawHybrid      `json:"hybrid"`
}

type rawLimit struct {
	Rate  *float64        `json:"rate"`
	Per   json.RawMessage `json:"per"`
	Burst *int64          `json:"burst"`
}

type rawHybrid struct {
	Batch   *int            `json:"batch"`
	MaxHold json.RawMessage `json:"max_hold"`
}

type policy uint8

const (
	policyLocal policy = iota
	policyRedis
)

// failAction is what a decision does when Redis cannot make it.
type failAction uint8

const (
	failLocal failAction = iota // this node's share of the limit, in memory
	failAllow
	failDeny
)

// limit is one compiled token bucket: `rate` tokens per `per`, at most
// `burst` saved up. It is kept as a GCRA (generic cell rate algorithm,
// ITU-T I.371): an emission interval T = per/rate and a tolerance
// tau = burst*T, both in nanoseconds.
type limit struct {
	rate  float64
	per   time.Duration
	burst int64
	T     int64 // ns per token
	tau   int64 // burst * T
}

// config is the validated, compiled configuration.
type config struct {
	limits    []limit
	key       keySpec
	policy    policy
	onFailure failAction
	nodes     int // 0: learned from Redis
	timeout   time.Duration
	maxKeys   int
	batch     int // hybrid batch; 0 = hybrid off
	maxHold   time.Duration
	// fingerprint identifies limits+key in Redis key names, so that a
	// changed config starts from fresh buckets instead of reinterpreting
	// old ones, and nodes running the same config share them.
	fingerprint string
}

// parseConfig decodes and validates raw. Every error names the key and the
// fix (README.md: an error names the key and the fix), and every wrong key is
// reported in one run: the errors are joined (errors.Join).
func parseConfig(b *sdk.Build, raw json.RawMessage) (*config, error) {
	var rc rawConfig
	if err := sdk.DecodeConfig(raw, &rc); err != nil {
		return nil, err
	}
	cfg := &config{timeout: defTimeout, maxKeys: defMaxKeys, maxHold: defMaxHold}
	var errs []error
	bad := func(err error) { errs = append(errs, err) }

	top := rc.Rate != nil || len(rc.Per) > 0 || rc.Burst != nil
	switch {
	case top && rc.Limits != nil:
		bad(errors.New("use either rate/per/burst or limits, not both"))
	case top:
		l, lerrs := compileLimit("", rc.Rate, rc.Per, rc.Burst)
		errs = append(errs, lerrs...)
		cfg.limits = []limit{l}
	case len(rc.Limits) == 0:
		bad(errors.New(`rate must be > 0: set rate, per and burst (e.g. {rate: 100, per: "1s", burst: 100}) or a limits list`))
	case len(rc.Limits) > maxLimits:
		bad(fmt.Errorf("limits may hold at most %d entries, got %d", maxLimits, len(rc.Limits)))
	default:
		for i, rl := range rc.Limits {
			l, lerrs := compileLimit(fmt.Sprintf("limits[%d].", i), rl.Rate, rl.Per, rl.Burst)
			errs = append(errs, lerrs...)
			cfg.limits = append(cfg.limits, l)
		}
	}
	limitsOK := len(errs) == 0

	ks, err := parseKeySpec(rc.Key)
	if err != nil {
		bad(err)
	}
	cfg.key = ks

	switch rc.Policy {
	case "", "local":
		cfg.policy = policyLocal
	case "redis":
		cfg.policy = policyRedis
	default:
		bad(fmt.Errorf("policy must be local or redis, got %q", rc.Policy))
	}

	// Keys for policy: redis alone are refused on a local policy, and
	// their values are then not checked further (that would be a second
	// error about a key that has to go anyway).
	if rc.Policy == "" || rc.Policy == "local" {
		if rc.OnStoreFailure != "" {
			bad(errors.New("on_store_failure only applies to policy: redis"))
		}
		if rc.Nodes != nil {
			bad(errors.New("nodes only applies to policy: redis"))
		}
		if len(rc.Timeout) > 0 {
			bad(errors.New("timeout only applies to policy: redis"))
		}
		if rc.Hybrid != nil {
			bad(errors.New("hybrid only applies to policy: redis"))
		}
		rc.OnStoreFailure, rc.Nodes, rc.Timeout, rc.Hybrid = "", nil, nil, nil
	}

	switch rc.OnStoreFailure {
	case "", "local":
		cfg.onFailure = failLocal
	case "allow":
		cfg.onFailure = failAllow
	case "deny":
		cfg.onFailure = failDeny
	default:
		bad(fmt.Errorf("on_store_failure must be allow, deny or local, got %q", rc.OnStoreFailure))
	}

	if rc.Nodes != nil {
		if *rc.Nodes < 1 || *rc.Nodes > maxNodes {
			bad(fmt.Errorf("nodes must be between 1 and %d (or left out to learn the node count from redis)", maxNodes))
		}
		cfg.nodes = *rc.Nodes
	}

	if len(rc.Timeout) > 0 {
		d, err := parseDuration(rc.Timeout)
		switch {
		case err != nil || d <= 0:
			bad(errors.New(`timeout must be a duration such as "20ms"`))
		case d > 10*time.Second:
			bad(errors.New(`timeout must be at most "10s": it is added to a request's time when redis is slow`))
		}
		cfg.timeout = d
	}

	if rc.MaxKeys != nil {
		if *rc.MaxKeys < 1 {
			bad(errors.New("max_keys must be >= 1"))
		}
		cfg.maxKeys = *rc.MaxKeys
	}

	if h := rc.Hybrid; h != nil {
		switch {
		case h.Batch == nil:
			bad(errors.New("hybrid.batch must be set, e.g. hybrid: {batch: 10}"))
		case *h.Batch < 2 || *h.Batch > maxBatch:
			bad(fmt.Errorf("hybrid.batch must be between 2 and %d", maxBatch))
		case limitsOK:
			// Compared with burst only once the limits compiled.
			for _, l := range cfg.limits {
				if int64(*h.Batch) > l.burst {
					bad(fmt.Errorf("hybrid.batch must not exceed burst (%d): a batch larger than the bucket is never granted", l.burst))
					break
				}
			}
		}
		if h.Batch != nil {
			cfg.batch = *h.Batch
		}
		if len(h.MaxHold) > 0 {
			d, err := parseDuration(h.MaxHold)
			if err != nil || d <= 0 {
				bad(errors.New(`hybrid.max_hold must be a duration such as "1s"`))
			}
			cfg.maxHold = d
		}
	}

	// Under `weir validate` the proxy may not connect to Redis, so a nil
	// client there does not prove the section is missing.
	if cfg.policy == policyRedis && b != nil && b.Redis == nil && !b.Validating {
		bad(errors.New("policy: redis needs a redis section in the gateway config"))
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.fingerprint = fingerprint(cfg)
	return cfg, nil
}

// compileLimit validates one rate/per/burst triple; prefix is "" or
// "limits[i]." so that errors point at the right entry. rate, per and
// burst are each checked, so three wrong keys give three errors; what
// depends on them together is checked once each is right.
func compileLimit(prefix string, rate *float64, per json.RawMessage, burst *int64) (limit, []error) {
	var errs []error
	rateOK := rate != nil && *rate > 0 && !math.IsInf(*rate, 0)
	if !rateOK {
		errs = append(errs, fmt.Errorf("%srate must be > 0", prefix))
	}
	d, err := parseDuration(per)
	switch {
	case len(per) == 0 || err != nil:
		errs = append(errs, fmt.Errorf(`%sper must be a duration such as "1s"`, prefix))
	case d < minPer || d > maxPer:
		errs = append(errs, fmt.Errorf(`%sper must be between "1ms" and "8784h"`, prefix))
	}
	var l limit
	switch {
	case burst != nil:
		l.burst = *burst
	case rateOK:
		// Without a burst the bucket holds one window's worth, which is
		// what "100 per second" means to most people.
		l.burst = int64(math.Max(1, math.Ceil(*rate)))
	default:
		l.burst = 1 // unknown until rate is right; nothing to report
	}
	if l.burst < 1 {
		errs = append(errs, fmt.Errorf("%sburst must be >= 1", prefix))
	}
	if l.burst > maxBurst {
		errs = append(errs, fmt.Errorf("%sburst must be <= %d", prefix, maxBurst))
	}
	if len(errs) > 0 {
		return limit{}, errs
	}
	l.rate, l.per = *rate, d
	t := math.Round(float64(d) / *rate)
	if t < 1000 {
		return limit{}, []error{fmt.Errorf("%srate is too high for per: at most one token per microsecond (%.0f per %s)", prefix, float64(d)/1000, d)}
	}
	l.T = int64(t)
	if l.T > maxTau/l.burst {
		return limit{}, []error{fmt.Errorf("%sburst * per / rate (the time to refill the bucket) must be at most 52 days: lower burst or raise rate", prefix)}
	}
	l.tau = l.burst * l.T
	return l, nil
}

// parseDuration accepts only a JSON string in time.ParseDuration syntax: a
// bare number could mean seconds or milliseconds.
func parseDuration(raw json.RawMessage) (time.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return 0, errors.New("not a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, err
	}
	return time.ParseDuration(s)
}

// fingerprint hashes what determines bucket contents: the limits and the
// key. 32 bits are plenty: it only separates configs of one route.
func fingerprint(cfg *config) string {
	h := fnv.New32a()
	for _, l := range cfg.limits {
		fmt.Fprintf(h, "%d/%d;", l.T, l.burst)
	}
	h.Write([]byte(cfg.key.String()))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

// hybridOn reports whether the hybrid lease mode is configured.
func (c *config) hybridOn() bool { return c.batch > 0 }
