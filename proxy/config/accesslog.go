package config

import (
	"slices"
	"strings"
)

// AccessLog is the top-level access_log section (README.md, "Access
// log"): one line per request, written off the request's time.
type AccessLog struct {
	// Path is "stdout" or a file, opened for appending (relative to the
	// config file's directory) and reopened on SIGUSR1.
	Path   string `json:"path,omitempty"`
	Format string `json:"format,omitempty"` // json | combined
	// Fields are the json format's keys, in order; nil is every field.
	Fields []string `json:"fields,omitempty"`
	// Sample is the share of requests answered below 400 that are
	// logged; answers of 400 and above always are.
	Sample *float64 `json:"sample,omitempty"`
	// Buffer is how many lines may wait for the writer; beyond it lines
	// are dropped and counted (weir_access_log_dropped_total).
	Buffer int `json:"buffer,omitempty"`
}

// Analytics holds the opt-in metrics whose label values come from
// configured names that may be many (consumers).
type Analytics struct {
	// Consumers turns on weir_consumer_requests_total{consumer,status_class}.
	Consumers bool `json:"consumers,omitempty"`
	// MaxConsumers caps the consumer label's values: requests of consumers
	// beyond the first MaxConsumers seen are counted as "_other".
	MaxConsumers int `json:"max_consumers,omitempty"`
}

// Access-log formats and paths.
const (
	AccessLogJSON     = "json"
	AccessLogCombined = "combined"
	AccessLogStdout   = "stdout"
)

// AccessLogFields are the fields an access-log line may hold, in the
// default order of the json format.
var AccessLogFields = []string{
	"time", "request_id", "client_ip", "method", "host", "path", "status",
	"bytes_sent", "duration_ms", "upstream_ms", "route", "service", "target",
	"consumer", "user_agent", "referer", "cache", "ratelimit",
}

// MaxAccessLogBuffer bounds access_log.buffer (the writer's queue).
const MaxAccessLogBuffer = 1 << 16

func applyAccessLogDefaults(c *Config) {
	if a := c.AccessLog; a != nil {
		if a.Path == "" {
			a.Path = AccessLogStdout
		}
		if a.Format == "" {
			a.Format = AccessLogJSON
		}
		if a.Sample == nil {
			a.Sample = ptr(DefaultAccessLogSample)
		}
		setInt(&a.Buffer, DefaultAccessLogBuffer)
	}
	if a := c.Analytics; a != nil {
		setInt(&a.MaxConsumers, DefaultMaxConsumers)
	}
}

func (v *validator) accessLog() {
	a := v.c.AccessLog
	if a == nil {
		return
	}
	const place = "access_log"
	if a.Format != "" && a.Format != AccessLogJSON && a.Format != AccessLogCombined {
		v.add(key(place, "format"), "%q is not a format: use json or combined", a.Format)
	}
	if a.Format == AccessLogCombined && len(a.Fields) > 0 {
		v.add(key(place, "fields"), "the combined format's fields are fixed (Apache/nginx combined); remove fields or use format json")
	}
	seen := map[string]bool{}
	for i, f := range a.Fields {
		switch {
		case !slices.Contains(AccessLogFields, f):
			v.add(index(key(place, "fields"), i), "unknown field %q%s; known: %s", f, didYouMean(f, AccessLogFields), strings.Join(AccessLogFields, ", "))
		case seen[f]:
			v.add(index(key(place, "fields"), i), "%q is listed twice; keep one", f)
		}
		seen[f] = true
	}
	if a.Sample != nil && (*a.Sample < 0 || *a.Sample > 1) {
		v.add(key(place, "sample"), "%v is not a share: give a number from 0 (only errors) to 1 (every request)", *a.Sample)
	}
	if a.Buffer < 0 || a.Buffer > MaxAccessLogBuffer {
		v.add(key(place, "buffer"), "%d lines is out of range: give 1 to %d", a.Buffer, MaxAccessLogBuffer)
	}
	if a.Path != "" && a.Path != AccessLogStdout && strings.HasSuffix(a.Path, "/") {
		v.add(key(place, "path"), "%q names a directory: give a file, or stdout", a.Path)
	}
}

func (v *validator) analytics() {
	if an := v.c.Analytics; an != nil && an.MaxConsumers < 0 {
		v.add("analytics.max_consumers", "%d is negative: give how many consumers get their own label value", an.MaxConsumers)
	}
}
