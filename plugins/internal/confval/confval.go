// Package confval holds the value types and checks that plugin configs
// share: durations written as Go duration strings, and RFC 9110 tokens
// (header and cookie names).
package confval

import (
	"errors"
	"fmt"
	"time"

	json "github.com/goccy/go-json"
	"github.com/weirgw/weir/internal/httpsyntax"
)

// Duration is a time.Duration written as a Go duration string ("30s"), as
// everywhere in Weir's config: a bare number is refused because "5" could
// mean seconds or milliseconds. UnmarshalJSON never fails: a decoding
// problem is kept and reported by Check, which knows the key's name, so
// the operator reads "timeout: invalid duration ..." rather than a bare
// decoder error.
type Duration struct {
	d   time.Duration
	set bool
	err error
}

// Dur is a Duration set to d, as if read from the config.
func Dur(d time.Duration) Duration { return Duration{d: d, set: true} }

// D is the duration (after Check, the default when the key was absent).
func (d Duration) D() time.Duration { return d.d }

// IsSet reports whether the key was present in the config (or Check
// applied its default).
func (d Duration) IsSet() bool { return d.set }

// UnmarshalJSON reads a JSON string such as "250ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	d.set = true
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		d.err = fmt.Errorf("a duration must be a string such as \"1s\" or \"250ms\", got %s", b)
		return nil
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.err = fmt.Errorf("invalid duration %q: use a number with a unit such as \"1s\" or \"250ms\"", s)
	case v < 0:
		d.err = fmt.Errorf("duration %q must not be negative", s)
	}
	d.d = v
	return nil
}

// Check reports a decoding error under the key's name ("key: ...") and
// applies def when the key was absent.
func (d *Duration) Check(key string, def time.Duration) error {
	if d.err != nil {
		return fmt.Errorf("%s: %w", key, d.err)
	}
	if !d.set {
		d.d, d.set = def, true
	}
	return nil
}

// DurationKey is one duration key of a config, for CheckDurations.
type DurationKey struct {
	Key     string
	D       *Duration
	Default time.Duration
}

// CheckDurations runs Check on each key in order and returns every error,
// joined (errors.Join), so that two wrong durations are reported in one
// run.
func CheckDurations(keys ...DurationKey) error {
	var errs []error
	for _, k := range keys {
		if err := k.D.Check(k.Key, k.Default); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// IsToken reports whether s is an RFC 9110 §5.6.2 token (1*tchar), which
// is what header field names (§5.1) and cookie names (RFC 6265 §4.1.1)
// are.
func IsToken(s string) bool { return httpsyntax.IsToken(s) }

// Prefix puts prefix before each error err joins (errors.Join), or before
// err itself, so that every line of a joined error says where it is:
// Prefix("limits[1]: ", err). nil stays nil.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list := j.Unwrap()
		out := make([]error, len(list))
		for i, e := range list {
			out[i] = Prefix(prefix, e)
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s%w", prefix, err)
}
