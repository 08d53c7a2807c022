// Package cors is the cors plugin: it answers CORS preflight requests at the
// gateway and adds the Access-Control-* headers to the responses of allowed
// origins (Fetch standard, "CORS protocol":
// https://fetch.spec.whatwg.org/#http-cors-protocol).
//
// List it first (globally or on the route): a preflight carries no
// credentials, so it must be answered before any authentication plugin
// refuses it.
package cors

import (
	"encoding/json"
	"fmt"

	"github.com/weirgw/weir/internal/httpsyntax"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/sdk"
)

func init() { sdk.Register(sdk.Factory{Name: "cors", New: New}) }

const (
	hOrigin         = "Origin"
	hVary           = "Vary"
	hRequestMethod  = "Access-Control-Request-Method"
	hRequestHeaders = "Access-Control-Request-Headers"
	hAllowOrigin    = "Access-Control-Allow-Origin"
	hAllowCreds     = "Access-Control-Allow-Credentials"
	hAllowMethods   = "Access-Control-Allow-Methods"
	hAllowHeaders   = "Access-Control-Allow-Headers"
	hExposeHeaders  = "Access-Control-Expose-Headers"
	hMaxAge         = "Access-Control-Max-Age"
)

var (
	star      = []byte("*")
	trueValue = []byte("true")
)

type filter struct {
	*compiled

	preflightAllowed  *metrics.Counter
	preflightRejected *metrics.Counter
	disallowed        *metrics.Counter
}

// New validates and compiles the config.
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	comp, err := compile(&cfg)
	if err != nil {
		return nil, err
	}
	route := b.Route
	if route == "" {
		route = "_global"
	}
	return &filter{
		compiled:          comp,
		preflightAllowed:  metrics.GetOrCreateCounter(fmt.Sprintf(`weir_cors_preflight_total{route=%q,result="allowed"}`, route)),
		preflightRejected: metrics.GetOrCreateCounter(fmt.Sprintf(`weir_cors_preflight_total{route=%q,result="rejected"}`, route)),
		disallowed:        metrics.GetOrCreateCounter(fmt.Sprintf(`weir_cors_disallowed_origin_total{route=%q}`, route)),
	}, nil
}

// OnRequest answers preflights and schedules the CORS headers of actual
// requests. It does not allocate.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	req := c.Request()
	origin := req.Header.Peek(hOrigin)
	if len(origin) == 0 {
		return sdk.Continue, nil // not a CORS request
	}
	allowed := f.allowed(origin)
	// A preflight is an OPTIONS request with Origin and
	// Access-Control-Request-Method (Fetch, "CORS-preflight request").
	if !f.continuePre && string(c.Method()) == "OPTIONS" && len(req.Header.Peek(hRequestMethod)) > 0 {
		if !allowed {
			// Answering without CORS headers would fail in the browser just
			// the same; a 403 also tells a developer looking at the network
			// tab why.
			f.preflightRejected.Inc()
			return c.Fail(403, "origin not allowed"), nil
		}
		f.preflightAllowed.Inc()
		f.answerPreflight(c, origin)
		return sdk.Stop, nil
	}
	if !allowed {
		f.disallowed.Inc()
		return sdk.Continue, nil
	}
	// Deferred: these must be on the response the client finally gets,
	// whether the upstream's, a cache hit or a gateway error.
	c.SetResponseHeader(hAllowOrigin, f.allowOriginValue(origin))
	if f.credentials {
		c.SetResponseHeader(hAllowCreds, trueValue)
	}
	if len(f.exposeHeaders) > 0 {
		c.SetResponseHeader(hExposeHeaders, f.exposeHeaders)
	}
	return sdk.Continue, nil
}

// allowed reports whether origin matches the configured origins.
func (f *filter) allowed(origin []byte) bool {
	if f.anyOrigin {
		return true
	}
	scheme, host, port, null, ok := parseOrigin(origin)
	if !ok {
		return false
	}
	for i := range f.patterns {
		if f.patterns[i].match(scheme, host, port, null) {
			return true
		}
	}
	return false
}

// allowOriginValue is "*" when any origin is allowed without credentials,
// otherwise the request's origin echoed (the only form Fetch accepts with
// credentials, and the only one that can name one of several origins).
func (f *filter) allowOriginValue(origin []byte) []byte {
	if f.anyOrigin {
		return star
	}
	return origin
}

// answerPreflight writes the 204 answer to an allowed preflight. The
// response is final (the filter returns Stop), so the headers go on it
// directly.
func (f *filter) answerPreflight(c *sdk.Ctx, origin []byte) {
	resp := c.Response()
	resp.ResetBody()
	resp.SetStatusCode(204)
	h := &resp.Header
	h.SetNoDefaultContentType(true)
	h.SetBytesV(hAllowOrigin, f.allowOriginValue(origin))
	if f.credentials {
		h.SetBytesV(hAllowCreds, trueValue)
	}
	h.SetBytesV(hAllowMethods, f.allowMethods)
	switch {
	case !f.reflectHeaders:
		if len(f.allowHeaders) > 0 {
			h.SetBytesV(hAllowHeaders, f.allowHeaders)
		}
	default:
		if rh := c.Request().Header.Peek(hRequestHeaders); len(rh) > 0 && isHeaderList(rh) {
			h.SetBytesV(hAllowHeaders, rh)
		}
	}
	if f.maxAge != nil {
		h.SetBytesV(hMaxAge, f.maxAge)
	}
	if !f.anyOrigin {
		h.Set(hVary, "Origin")
	}
}

// OnResponse adds "Vary: Origin" when the answer depends on the Origin
// header (any origin list other than "*"), on every response including
// those to requests without Origin: a shared cache must not serve a response
// decorated for one origin to another, nor an undecorated one to an allowed
// origin.
//
// It adds a Vary field rather than setting one, because Vary is a list
// (RFC 9110 §12.5.5) and the upstream's own entries must survive; this is
// also why it is not done through Ctx.SetResponseHeader, which replaces.
func (f *filter) OnResponse(c *sdk.Ctx) error {
	if f.anyOrigin {
		return nil
	}
	h := &c.Response().Header
	for _, v := range h.PeekAll(hVary) {
		if hasListToken(v, "origin") || hasListToken(v, "*") {
			return nil
		}
	}
	h.Add(hVary, "Origin")
	return nil
}

// hasListToken reports whether the comma-separated list v contains token
// (lower case), ignoring case and optional whitespace.
func hasListToken(v []byte, token string) bool {
	for len(v) > 0 {
		end := 0
		for end < len(v) && v[end] != ',' {
			end++
		}
		elem := v[:end]
		for len(elem) > 0 && (elem[0] == ' ' || elem[0] == '\t') {
			elem = elem[1:]
		}
		for len(elem) > 0 && (elem[len(elem)-1] == ' ' || elem[len(elem)-1] == '\t') {
			elem = elem[:len(elem)-1]
		}
		if httpsyntax.EqualFoldLower(elem, token) {
			return true
		}
		if end == len(v) {
			break
		}
		v = v[end+1:]
	}
	return false
}

// isHeaderList reports whether v looks like a list of header names, the
// syntax of Access-Control-Request-Headers. Anything else is not reflected.
func isHeaderList(v []byte) bool {
	for _, c := range v {
		if !httpsyntax.IsTchar(c) && c != ',' && c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

func b2s(b []byte) string { return sdk.B2S(b) }
