package config

import (
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// Tracing exports trace spans over OTLP/HTTP (README.md, "Traces").
// Absent: no spans are recorded (the W3C traceparent is still passed on).
type Tracing struct {
	OTLP OTLP `json:"otlp"` // where and how spans are exported
	// Sample is the share of requests that arrive without a sampled
	// traceparent whose trace is recorded: 0 records none of them (a
	// sampled incoming traceparent is recorded whatever sample says), 1
	// all. A pointer: 0 is a setting of its own, absent is the default.
	Sample         *float64 `json:"sample,omitempty"`
	ServiceName    string   `json:"service_name,omitempty"`    // the spans' service.name
	ResponseHeader bool     `json:"response_header,omitempty"` // traceparent on sampled responses
}

// OTLP is where spans are sent: an OTLP/HTTP (protobuf) endpoint.
type OTLP struct {
	Endpoint string            `json:"endpoint,omitempty"` // the OTLP/HTTP traces URL, http or https
	Headers  map[string]string `json:"headers,omitempty"`  // sent with every export (an API key); masked in GET /config
	Timeout  Duration          `json:"timeout,omitempty"`  // one export, retries included
}

// Tracing defaults (the table in defaults.go).
const (
	DefaultTracingEndpoint = "http://127.0.0.1:4318/v1/traces"
	DefaultTracingSample   = 0.01
	DefaultTracingService  = "weir"
	DefaultTracingTimeout  = 2 * time.Second
)

func applyTracingDefaults(t *Tracing) {
	if t == nil {
		return
	}
	if t.OTLP.Endpoint == "" {
		t.OTLP.Endpoint = DefaultTracingEndpoint
	}
	if t.Sample == nil {
		s := DefaultTracingSample
		t.Sample = &s
	}
	if t.ServiceName == "" {
		t.ServiceName = DefaultTracingService
	}
	setDur(&t.OTLP.Timeout, DefaultTracingTimeout)
}

func (v *validator) tracing() {
	t := v.c.Tracing
	if t == nil {
		return
	}
	if e := t.OTLP.Endpoint; e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("tracing.otlp.endpoint", "%q is not an http(s) URL: give the OTLP/HTTP traces endpoint, such as %q", e, DefaultTracingEndpoint)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(t.OTLP.Headers)) {
		place := key("tracing.otlp.headers", k)
		if !httpsyntax.IsToken(k) {
			v.add(place, "%q is not a header name: use letters, digits and -", k)
		}
		if !httpsyntax.ValidFieldValue(t.OTLP.Headers[k]) {
			v.add(place, "the value holds control characters: use printable characters only")
		}
	}
	v.duration("tracing.otlp.timeout", t.OTLP.Timeout, time.Millisecond, time.Minute)
	if s := t.Sample; s != nil && (*s < 0 || *s > 1) {
		v.add("tracing.sample", "%v is not a share: give a number from 0 (only requests that arrive sampled) to 1 (every request), such as 0.01", *s)
	}
}

func cloneTracing(t *Tracing) *Tracing {
	if t == nil {
		return nil
	}
	n := *t
	n.OTLP.Headers = maps.Clone(t.OTLP.Headers)
	if t.Sample != nil {
		s := *t.Sample
		n.Sample = &s
	}
	return &n
}

// maskTracing masks the export headers' values: they are credentials
// (an API key, a bearer token) more often than not.
func maskTracing(t *Tracing) {
	if t == nil {
		return
	}
	for k, val := range t.OTLP.Headers {
		if val != "" {
			t.OTLP.Headers[k] = Mask
		}
	}
}

// unmaskTracing puts back the stored value of each masked header.
func (u *unmasker) tracing(t, stored *Tracing) {
	if t == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(t.OTLP.Headers)) {
		if t.OTLP.Headers[k] != Mask {
			continue
		}
		var s *string
		if stored != nil {
			if old, ok := stored.OTLP.Headers[k]; ok && old != "" {
				s = &old
			}
		}
		val := t.OTLP.Headers[k]
		u.scalar(&val, s, key("tracing.otlp.headers", k))
		t.OTLP.Headers[k] = val
	}
}
