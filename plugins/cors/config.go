package cors

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

// Config is the plugin's `config` object.
type Config struct {
	// Origins allowed: "*", exact origins ("https://app.example.com"),
	// wildcards ("https://*.example.com", or "*.example.com" for http and
	// https), optionally with a port or ":*" for any port, and "null".
	Origins []string `json:"origins"`
	// Methods answered in Access-Control-Allow-Methods; default GET, HEAD,
	// PUT, PATCH, POST, DELETE.
	Methods []string `json:"methods"`
	// Headers answered in Access-Control-Allow-Headers. Absent: the
	// preflight's Access-Control-Request-Headers is reflected; [] allows
	// only CORS-safelisted headers.
	Headers []string `json:"headers"`
	// ExposedHeaders are listed in Access-Control-Expose-Headers.
	ExposedHeaders []string `json:"exposed_headers"`
	// Credentials sends Access-Control-Allow-Credentials: true.
	Credentials bool `json:"credentials"`
	// MaxAge is how long browsers may cache a preflight answer: seconds or a
	// duration string ("10m"); 0 leaves the header out.
	MaxAge MaxAge `json:"max_age"`
	// PreflightContinue forwards preflights upstream instead of answering.
	PreflightContinue bool `json:"preflight_continue"`
}

// MaxAge accepts a number of seconds or a Go duration string.
type MaxAge struct{ time.Duration }

// UnmarshalJSON implements json.Unmarshaler.
func (m *MaxAge) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("max_age: %q is not a duration; write seconds (600) or a duration (\"10m\")", s)
		}
		m.Duration = d
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n > int64(time.Duration(1<<63-1)/time.Second) {
		return fmt.Errorf("max_age: %s is not a number of seconds; write seconds (600) or a duration (\"10m\")", b)
	}
	m.Duration = time.Duration(n) * time.Second
	return nil
}

var defaultMethods = []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"}

// compiled is what the filter needs, built from a validated Config.
type compiled struct {
	anyOrigin      bool
	patterns       []originPattern
	credentials    bool
	allowMethods   []byte
	reflectHeaders bool   // Headers absent: echo Access-Control-Request-Headers
	allowHeaders   []byte // nil with !reflectHeaders: send none
	exposeHeaders  []byte
	maxAge         []byte // nil: send none
	continuePre    bool
}

func compile(cfg *Config) (*compiled, error) {
	c := &compiled{credentials: cfg.Credentials, continuePre: cfg.PreflightContinue}
	// Every key is checked and the errors joined, so that one run shows
	// them all.
	var errs []error
	bad := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(cfg.Origins) == 0 {
		bad(errors.New(`origins must list at least one origin, such as https://app.example.com ("*" allows any)`))
	}
	for i, o := range cfg.Origins {
		if o == "*" {
			if len(cfg.Origins) > 1 {
				bad(fmt.Errorf(`origins[%d]: "*" allows every origin; remove the other entries or the "*"`, i))
			} else if cfg.Credentials {
				// Fetch refuses a credentialed response whose
				// Access-Control-Allow-Origin is "*"; echoing any origin
				// instead would let every site read users' data.
				bad(errors.New(`credentials cannot be combined with origins "*"; list the allowed origins`))
			}
			c.anyOrigin = true
			continue
		}
		p, err := parseOriginPattern(o)
		if err != nil {
			bad(fmt.Errorf("origins[%d]: %w", i, err))
			continue
		}
		c.patterns = append(c.patterns, p)
	}

	methods := cfg.Methods
	if methods == nil {
		methods = defaultMethods
	} else if len(methods) == 0 {
		bad(errors.New("methods must not be empty; omit it for the default (GET, HEAD, PUT, PATCH, POST, DELETE)"))
	}
	var err error
	c.allowMethods, err = tokenList("methods", methods, cfg.Credentials)
	bad(err)
	if cfg.Headers == nil {
		c.reflectHeaders = true
	} else {
		c.allowHeaders, err = tokenList("headers", cfg.Headers, cfg.Credentials)
		bad(err)
	}
	c.exposeHeaders, err = tokenList("exposed_headers", cfg.ExposedHeaders, cfg.Credentials)
	bad(err)
	switch d := cfg.MaxAge.Duration; {
	case d < 0:
		bad(errors.New("max_age must be >= 0"))
	case d%time.Second != 0:
		bad(fmt.Errorf("max_age %s is not a whole number of seconds", d))
	case d > 0:
		c.maxAge = strconv.AppendInt(nil, int64(d/time.Second), 10)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// tokenList validates header or method names (RFC 9110 §5.6.2 tokens) and
// joins them with ", ". "*" is the Fetch wildcard, which browsers read
// literally on credentialed requests, so it is refused with credentials.
func tokenList(key string, list []string, credentials bool) ([]byte, error) {
	if len(list) == 0 {
		return nil, nil
	}
	var errs []error
	for i, s := range list {
		if s == "*" {
			if credentials {
				errs = append(errs, fmt.Errorf(`%s[%d]: "*" is not a wildcard when credentials is true (browsers take it literally); list the names`, key, i))
			}
			continue
		}
		if !httpsyntax.IsToken(s) {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not a valid name", key, i, s))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return []byte(strings.Join(list, ", ")), nil
}
