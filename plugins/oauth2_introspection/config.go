package oauth2introspection

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/weirgw/weir/plugins/internal/bearer"
	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/sdk"
)

// config is the plugin's `config` object (README.md, configuration).
type config struct {
	IntrospectionURL string `json:"introspection_url"`
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret"`
	// TokenTypeHint is sent as token_type_hint (RFC 7662 §2.1).
	TokenTypeHint *string `json:"token_type_hint"`

	CacheTTL    confval.Duration `json:"cache_ttl"`
	NegativeTTL confval.Duration `json:"negative_ttl"`
	Timeout     confval.Duration `json:"timeout"`
	CacheSize   *int             `json:"cache_size"`
	// RedisTimeout bounds one Redis round trip of the shared cache.
	RedisTimeout confval.Duration `json:"redis_timeout"`

	RequiredScopes []string `json:"required_scopes"`
	// OnError is the status when the introspection server fails: 503
	// (default) or 401.
	OnError int `json:"on_error"`

	Header          string `json:"header"`
	Query           string `json:"query"`
	HideCredentials bool   `json:"hide_credentials"`
	MaxTokenBytes   int    `json:"max_token_bytes"`

	// MatchConsumerNames maps a token whose sub (or else client_id) is a
	// consumer's name to that consumer, besides explicit credentials.
	MatchConsumerNames *bool  `json:"match_consumer_names"`
	Realm              string `json:"realm"`
}

const (
	defaultCacheTTL      = 60 * time.Second
	defaultNegativeTTL   = 5 * time.Second
	defaultTimeout       = 2 * time.Second
	defaultRedisTimeout  = 200 * time.Millisecond
	defaultCacheSize     = 10000
	defaultMaxTokenBytes = 4096
	defaultTokenTypeHint = "access_token"
	defaultRealm         = "weir"
	maxCacheSize         = 1 << 20
	maxTokenBytesLimit   = 64 << 10
)

func parseConfig(raw []byte) (*config, error) {
	var cfg config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	// Every key is checked and the errors joined, so that one run shows
	// them all; checks that compare durations run once those parsed.
	var errs []error
	bad := func(err error) { errs = append(errs, err) }
	if cfg.IntrospectionURL == "" {
		bad(errors.New("introspection_url is required"))
	} else if u, err := url.Parse(cfg.IntrospectionURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad(fmt.Errorf("introspection_url %q must be an absolute http(s) URL", cfg.IntrospectionURL))
	} else if u.User != nil {
		bad(errors.New("introspection_url must not carry credentials; use client_id and client_secret"))
	}
	if (cfg.ClientID == "") != (cfg.ClientSecret == "") {
		bad(errors.New("client_id and client_secret go together: set both (HTTP Basic, RFC 6749 §2.3.1) or neither"))
	}
	if strings.ContainsAny(cfg.ClientID, ":\r\n") {
		// RFC 6749 §2.3.1 form-encodes the id, but many servers do not
		// decode it: refuse the ambiguous character instead.
		bad(errors.New("client_id must not contain ':' or line breaks"))
	}
	if cfg.TokenTypeHint == nil {
		h := defaultTokenTypeHint
		cfg.TokenTypeHint = &h
	}
	durErr := confval.CheckDurations(
		confval.DurationKey{Key: "cache_ttl", D: &cfg.CacheTTL, Default: defaultCacheTTL},
		confval.DurationKey{Key: "negative_ttl", D: &cfg.NegativeTTL, Default: defaultNegativeTTL},
		confval.DurationKey{Key: "timeout", D: &cfg.Timeout, Default: defaultTimeout},
		confval.DurationKey{Key: "redis_timeout", D: &cfg.RedisTimeout, Default: defaultRedisTimeout},
	)
	if durErr != nil {
		bad(durErr)
	} else {
		if cfg.CacheTTL.D() > 24*time.Hour {
			bad(errors.New("cache_ttl must be at most 24h (0s turns caching of active tokens off)"))
		} else if cfg.NegativeTTL.D() > cfg.CacheTTL.D() && cfg.CacheTTL.D() > 0 {
			bad(errors.New("negative_ttl must not exceed cache_ttl"))
		}
		if cfg.Timeout.D() <= 0 || cfg.Timeout.D() > time.Minute {
			bad(errors.New("timeout must be > 0 and at most 1m"))
		}
		if cfg.RedisTimeout.D() <= 0 || cfg.RedisTimeout.D() > 10*time.Second {
			bad(errors.New("redis_timeout must be > 0 and at most 10s"))
		}
	}
	if cfg.CacheSize == nil {
		n := defaultCacheSize
		cfg.CacheSize = &n
	}
	if *cfg.CacheSize < 0 || *cfg.CacheSize > maxCacheSize {
		bad(fmt.Errorf("cache_size must be between 0 (no in-process cache) and %d", maxCacheSize))
	}
	for _, s := range cfg.RequiredScopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			bad(fmt.Errorf("required_scopes: %q is not a scope token (RFC 6749 §3.3)", s))
		}
	}
	switch cfg.OnError {
	case 0:
		cfg.OnError = 503
	case 503, 401:
	default:
		bad(fmt.Errorf("on_error must be 503 or 401, got %d", cfg.OnError))
	}
	if cfg.Header == "" && cfg.Query == "" {
		cfg.Header = "Authorization"
	}
	if cfg.Header != "" && !confval.IsToken(cfg.Header) {
		bad(fmt.Errorf("header %q is not a valid header name", cfg.Header))
	}
	if cfg.Query != "" && strings.ContainsAny(cfg.Query, "&=#? ") {
		bad(fmt.Errorf("query %q is not a valid query parameter name", cfg.Query))
	}
	switch {
	case cfg.MaxTokenBytes == 0:
		cfg.MaxTokenBytes = defaultMaxTokenBytes
	case cfg.MaxTokenBytes < 16 || cfg.MaxTokenBytes > maxTokenBytesLimit:
		bad(fmt.Errorf("max_token_bytes must be between 16 and %d", maxTokenBytesLimit))
	}
	if cfg.MatchConsumerNames == nil {
		t := true
		cfg.MatchConsumerNames = &t
	}
	if cfg.Realm == "" {
		cfg.Realm = defaultRealm
	}
	if err := bearer.ValidRealm(cfg.Realm); err != nil {
		bad(err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

// credentialConfig is one entry of a consumer's
// `credentials.oauth2_introspection` list: the token subject or client
// that identifies the consumer.
type credentialConfig struct {
	Sub      string `json:"sub"`
	ClientID string `json:"client_id"`
}
