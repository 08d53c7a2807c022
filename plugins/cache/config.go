package cache

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/weirgw/weir/internal/httpsyntax"

	json "github.com/goccy/go-json"
)

// Config is the plugin's `config` object (README.md, "Config").
type Config struct {
	// Store is "memory" (default) or "redis" (needs the top-level redis
	// section).
	Store string `json:"store"`
	// MaxBytes bounds the memory store (keys, objects and bookkeeping).
	MaxBytes Size `json:"max_bytes"`
	// MaxObjectBytes is the largest body stored; larger responses pass
	// through untouched.
	MaxObjectBytes Size `json:"max_object_bytes"`
	// DefaultTTL is the freshness given to a heuristically cacheable
	// response without explicit freshness; 0 caches only what the headers
	// allow.
	DefaultTTL Duration `json:"default_ttl"`
	// Heuristic enables RFC 9111 §4.2.2 heuristic freshness: 10% of the
	// time since Last-Modified, at most 24h.
	Heuristic bool `json:"heuristic"`
	// VaryBy lists request headers added to every response's Vary.
	VaryBy []string `json:"vary_by"`
	// CacheSetCookie allows storing responses that carry Set-Cookie.
	CacheSetCookie bool `json:"cache_set_cookie"`
	// Collapse makes concurrent misses for one key wait for a single
	// upstream fetch (default true).
	Collapse *bool `json:"collapse"`
	// LockTimeout bounds how long a collapsed request waits.
	LockTimeout Duration `json:"lock_timeout"`
	// Methods are the methods looked up: GET and/or HEAD.
	Methods []string `json:"methods"`
	// StatusCodes, when set, restricts the statuses stored.
	StatusCodes []int `json:"status_codes"`
	// TagHeader names the response header carrying surrogate keys (space
	// separated), e.g. "Surrogate-Key".
	TagHeader string `json:"tag_header"`
	// IgnoreAuthorization stores responses to requests with credentials
	// even without public / s-maxage / must-revalidate (RFC 9111 §3.5).
	IgnoreAuthorization bool `json:"ignore_authorization"`
	// KeepStale is how long an entry is kept after its freshness (and
	// stale windows) ran out: for revalidation, max-stale and
	// stale-if-error requests.
	KeepStale Duration `json:"keep_stale"`
	// RedisTimeout bounds one Redis round trip on a request's time.
	RedisTimeout Duration `json:"redis_timeout"`
}

const (
	defaultMaxBytes       = 64 << 20
	defaultMaxObjectBytes = 1 << 20
	defaultLockTimeout    = 5 * time.Second
	defaultKeepStale      = time.Hour
	defaultRedisTimeout   = 250 * time.Millisecond
	heuristicMax          = 24 * time.Hour
)

func (c *Config) applyDefaults() {
	if c.Store == "" {
		c.Store = "memory"
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = defaultMaxObjectBytes
	}
	if c.Collapse == nil {
		t := true
		c.Collapse = &t
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = Duration(defaultLockTimeout)
	}
	if len(c.Methods) == 0 {
		c.Methods = []string{"GET", "HEAD"}
	}
	if c.KeepStale == 0 {
		c.KeepStale = Duration(defaultKeepStale)
	}
	if c.RedisTimeout == 0 {
		c.RedisTimeout = Duration(defaultRedisTimeout)
	}
}

// validate reports the first problem, naming the key and the fix.
func (c *Config) validate() error {
	// Every key is checked and the errors joined, so that one run shows
	// them all.
	var errs []error
	bad := func(err error) { errs = append(errs, err) }
	switch c.Store {
	case "memory", "redis":
	default:
		bad(fmt.Errorf("store must be memory or redis, got %q", c.Store))
	}
	if c.MaxBytes < 0 {
		bad(errors.New("max_bytes must be > 0"))
	}
	switch {
	case c.MaxObjectBytes < 0:
		bad(errors.New("max_object_bytes must be > 0"))
	case c.MaxObjectBytes > c.MaxBytes && c.MaxBytes >= 0:
		bad(fmt.Errorf("max_object_bytes (%d) must not exceed max_bytes (%d)", c.MaxObjectBytes, c.MaxBytes))
	case c.MaxObjectBytes > 1<<30:
		bad(errors.New("max_object_bytes must be at most 1GiB"))
	}
	if c.DefaultTTL < 0 {
		bad(errors.New("default_ttl must be >= 0"))
	}
	if c.LockTimeout < 0 || time.Duration(c.LockTimeout) > time.Minute {
		bad(errors.New("lock_timeout must be between 0s and 1m"))
	}
	if c.KeepStale < 0 {
		bad(errors.New("keep_stale must be >= 0"))
	}
	if c.RedisTimeout <= 0 {
		bad(errors.New("redis_timeout must be > 0"))
	}
	for i, m := range c.Methods {
		switch strings.ToUpper(m) {
		case "GET", "HEAD":
			c.Methods[i] = strings.ToUpper(m)
		default:
			bad(fmt.Errorf("methods[%d]: only GET and HEAD can be cached, got %q", i, m))
		}
	}
	for i, s := range c.StatusCodes {
		switch {
		case s < 200 || s > 599:
			bad(fmt.Errorf("status_codes[%d]: %d is not a final status (200-599)", i, s))
		case s == 206:
			bad(fmt.Errorf("status_codes[%d]: 206 partial responses are not stored; remove it", i))
		case s == 304:
			bad(fmt.Errorf("status_codes[%d]: 304 is a validation response and is never stored; remove it", i))
		}
	}
	for i, h := range c.VaryBy {
		if !httpsyntax.IsToken(h) || h == "*" {
			bad(fmt.Errorf("vary_by[%d]: %q is not a header name", i, h))
		}
	}
	if c.TagHeader != "" && !httpsyntax.IsToken(c.TagHeader) {
		bad(fmt.Errorf("tag_header: %q is not a header name", c.TagHeader))
	}
	return errors.Join(errs...)
}

// Duration is a time.Duration read from "1.5s"-style strings (or a number
// of seconds).
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. \"5s\", \"250ms\")", s)
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("invalid duration %s (use e.g. \"5s\")", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// Size is a byte count read from a number or a string with a unit ("64MiB",
// "512KB", "1GB"; KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
type Size int64

// UnmarshalJSON implements json.Unmarshaler.
func (s *Size) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := parseSize(str)
		if err != nil {
			return err
		}
		*s = Size(v)
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("invalid size %s (use bytes or e.g. \"64MiB\")", b)
	}
	*s = Size(v)
	return nil
}

func parseSize(str string) (int64, error) {
	t := strings.TrimSpace(str)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q (use bytes or e.g. \"64MiB\")", str)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", str, err)
	}
	mult := int64(1)
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
	case "kb", "k":
		mult = 1000
	case "kib":
		mult = 1 << 10
	case "mb", "m":
		mult = 1000 * 1000
	case "mib":
		mult = 1 << 20
	case "gb", "g":
		mult = 1000 * 1000 * 1000
	case "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit (use B, KB, KiB, MB, MiB, GB or GiB)", str)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: too large", str)
	}
	return n * mult, nil
}
