package jwt

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/weirgw/weir/plugins/internal/bearer"
	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/sdk"
)

// config is the plugin's `config` object (README.md, configuration).
type config struct {
	// Header carries the token. For Authorization the value must use the
	// Bearer scheme (RFC 6750 §2.1); any other header carries the bare token,
	// with an optional "Bearer " prefix.
	Header string `json:"header"`
	// Cookie, when set, is read when the header is absent.
	Cookie string `json:"cookie"`
	// HideCredentials removes the token's header or cookie before the
	// request goes upstream.
	HideCredentials bool `json:"hide_credentials"`

	// Algorithms is the instance's allow-list; anything else is refused.
	Algorithms []string `json:"algorithms"`
	// KeyClaimName is the claim whose value selects a consumer credential.
	KeyClaimName string `json:"key_claim_name"`

	JWKSURL        string           `json:"jwks_url"`
	JWKSRefresh    confval.Duration `json:"jwks_refresh"`
	JWKSMinRefresh confval.Duration `json:"jwks_min_refresh"`
	JWKSTimeout    confval.Duration `json:"jwks_timeout"`
	// Issuer is required of tokens verified with the JWKS keys.
	Issuer string `json:"issuer"`
	// ConsumerClaim names the claim of a JWKS token whose value, when it is
	// the name of a configured consumer, identifies that consumer.
	ConsumerClaim string `json:"consumer_claim"`

	Audiences       []string          `json:"audiences"`
	ClockSkew       confval.Duration  `json:"clock_skew"`
	RequireExp      *bool             `json:"require_exp"`
	MaxTokenBytes   int               `json:"max_token_bytes"`
	ClaimsToHeaders map[string]string `json:"claims_to_headers"`

	CacheSize *int             `json:"cache_size"`
	CacheTTL  confval.Duration `json:"cache_ttl"`

	// Realm is the realm of the WWW-Authenticate challenge (RFC 6750 §3).
	Realm string `json:"realm"`
}

const (
	defaultHeader         = "Authorization"
	defaultKeyClaim       = "iss"
	defaultJWKSRefresh    = 5 * time.Minute
	defaultJWKSMinRefresh = 30 * time.Second
	defaultJWKSTimeout    = 5 * time.Second
	defaultMaxTokenBytes  = 8192
	defaultCacheSize      = 4096
	defaultCacheTTL       = time.Minute
	defaultRealm          = "weir"

	// maxTokenBytesLimit keeps max_token_bytes below what any sane header
	// carries; server.max_header_bytes bounds the request anyway.
	maxTokenBytesLimit = 64 << 10
	maxCacheSize       = 1 << 20
	minJWKSInterval    = time.Second
)

// supportedAlgs are the algorithms the jwt plugin supports (README.md), in a
// stable order. "none" is deliberately absent and can never be allowed.
var supportedAlgs = [...]string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256",
	"ES256", "ES384",
	"EdDSA",
}

func isSupportedAlg(a string) bool {
	return algIndex(a) >= 0
}

// algIndex is a's place in supportedAlgs, or -1.
func algIndex(a string) int { return slices.Index(supportedAlgs[:], a) }

// isHMAC reports whether alg uses a shared secret (RFC 7518 §3.2).
func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// parseConfig decodes raw, applies defaults and validates every key.
func parseConfig(raw []byte) (*config, error) {
	var cfg config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	// Every key is checked and the errors joined, so that one run shows
	// them all; checks that compare durations run once those parsed.
	var errs []error
	bad := func(err error) { errs = append(errs, err) }
	if cfg.Header == "" && cfg.Cookie == "" {
		cfg.Header = defaultHeader
	}
	if cfg.Header != "" && !confval.IsToken(cfg.Header) {
		bad(fmt.Errorf("header %q is not a valid header name", cfg.Header))
	}
	if cfg.Cookie != "" && !confval.IsToken(cfg.Cookie) {
		bad(fmt.Errorf("cookie %q is not a valid cookie name", cfg.Cookie))
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = append([]string(nil), supportedAlgs[:]...)
	}
	seen := map[string]bool{}
	for _, a := range cfg.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			bad(errors.New(`algorithms: "none" is never allowed (unsigned tokens)`))
		case !isSupportedAlg(a):
			bad(fmt.Errorf("algorithms: unknown algorithm %q; use %s", a, strings.Join(supportedAlgs[:], ", ")))
		case seen[a]:
			bad(fmt.Errorf("algorithms: %q is listed twice", a))
		}
		seen[a] = true
	}
	if cfg.KeyClaimName == "" {
		cfg.KeyClaimName = defaultKeyClaim
	}
	jwksSet := cfg.JWKSRefresh.IsSet() || cfg.JWKSMinRefresh.IsSet() || cfg.JWKSTimeout.IsSet()
	durErr := confval.CheckDurations(
		confval.DurationKey{Key: "jwks_refresh", D: &cfg.JWKSRefresh, Default: defaultJWKSRefresh},
		confval.DurationKey{Key: "jwks_min_refresh", D: &cfg.JWKSMinRefresh, Default: -1}, // defaulted below
		confval.DurationKey{Key: "jwks_timeout", D: &cfg.JWKSTimeout, Default: defaultJWKSTimeout},
		confval.DurationKey{Key: "clock_skew", D: &cfg.ClockSkew},
		confval.DurationKey{Key: "cache_ttl", D: &cfg.CacheTTL, Default: defaultCacheTTL},
	)
	if durErr != nil {
		bad(durErr)
	}
	if cfg.JWKSMinRefresh.D() == -1 {
		// 30s, or jwks_refresh when that is shorter. (-1 cannot come from
		// the config: negative durations are refused.)
		cfg.JWKSMinRefresh = confval.Dur(min(defaultJWKSMinRefresh, cfg.JWKSRefresh.D()))
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(fmt.Errorf("jwks_url %q must be an absolute http(s) URL", cfg.JWKSURL))
		}
		if !hasAsymmetric(cfg.Algorithms) {
			bad(errors.New("jwks_url needs at least one asymmetric algorithm (RS*, PS256, ES*, EdDSA) in algorithms"))
		}
	} else {
		switch {
		case cfg.Issuer != "":
			bad(errors.New("issuer applies to tokens verified with jwks_url; set jwks_url or remove issuer (consumer credentials match their own issuer)"))
		case cfg.ConsumerClaim != "":
			bad(errors.New("consumer_claim applies to tokens verified with jwks_url; set jwks_url or remove consumer_claim"))
		case jwksSet:
			bad(errors.New("jwks_refresh, jwks_min_refresh and jwks_timeout need jwks_url"))
		}
	}
	if durErr == nil {
		// One error for the pair: jwks_min_refresh defaults from
		// jwks_refresh, so a short jwks_refresh makes it short too.
		switch {
		case cfg.JWKSRefresh.D() < minJWKSInterval:
			bad(fmt.Errorf("jwks_refresh must be at least %s", minJWKSInterval))
		case cfg.JWKSMinRefresh.D() < minJWKSInterval:
			bad(fmt.Errorf("jwks_min_refresh must be at least %s (it bounds refetches caused by unknown key IDs)", minJWKSInterval))
		case cfg.JWKSMinRefresh.D() > cfg.JWKSRefresh.D():
			bad(errors.New("jwks_min_refresh must not exceed jwks_refresh"))
		}
		if cfg.JWKSTimeout.D() <= 0 || cfg.JWKSTimeout.D() > time.Minute {
			bad(errors.New("jwks_timeout must be > 0 and at most 1m"))
		}
	}
	for _, a := range cfg.Audiences {
		if a == "" {
			bad(errors.New("audiences: an audience must not be empty"))
			break
		}
	}
	if durErr == nil && cfg.ClockSkew.D() > 5*time.Minute {
		bad(errors.New("clock_skew must be at most 5m"))
	}
	if cfg.RequireExp == nil {
		t := true
		cfg.RequireExp = &t
	}
	switch {
	case cfg.MaxTokenBytes == 0:
		cfg.MaxTokenBytes = defaultMaxTokenBytes
	case cfg.MaxTokenBytes < 64 || cfg.MaxTokenBytes > maxTokenBytesLimit:
		bad(fmt.Errorf("max_token_bytes must be between 64 and %d", maxTokenBytesLimit))
	}
	// In claim order, so that the errors come out the same every run.
	for _, claim := range slices.Sorted(maps.Keys(cfg.ClaimsToHeaders)) {
		h := cfg.ClaimsToHeaders[claim]
		// The gateway writes the fields it owns itself (sdk's one list).
		why, owned := sdk.HeaderOwned(h, false)
		switch {
		case claim == "":
			bad(errors.New("claims_to_headers: a claim name must not be empty"))
		case !confval.IsToken(h):
			bad(fmt.Errorf("claims_to_headers: %q is not a valid header name (claim %q)", h, claim))
		case owned:
			bad(fmt.Errorf("claims_to_headers: header %q is reserved and cannot carry a claim: %s", h, why))
		case cfg.Header != "" && strings.EqualFold(h, cfg.Header):
			bad(fmt.Errorf("claims_to_headers: header %q is where the token comes from", h))
		}
	}
	if cfg.CacheSize == nil {
		n := defaultCacheSize
		cfg.CacheSize = &n
	}
	if *cfg.CacheSize < 0 || *cfg.CacheSize > maxCacheSize {
		bad(fmt.Errorf("cache_size must be between 0 (off) and %d", maxCacheSize))
	}
	if durErr == nil && cfg.CacheTTL.D() <= 0 {
		bad(errors.New("cache_ttl must be > 0 (set cache_size: 0 to turn the cache off)"))
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

func hasAsymmetric(algs []string) bool {
	for _, a := range algs {
		if !isHMAC(a) {
			return true
		}
	}
	return false
}
