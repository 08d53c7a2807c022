// Package requestsizelimit is the request_size_limit plugin: it refuses
// request bodies over a size with 413, whether the size is announced in
// Content-Length or only discovered while a chunked body streams through.
package requestsizelimit

import (
	"encoding/json"
	"fmt"

	"github.com/weirgw/weir/sdk"
)

func init() {
	sdk.Register(sdk.Factory{Name: "request_size_limit", New: New})
}

// Config of the plugin.
type Config struct {
	// MaxBytes is the largest body accepted, in bytes.
	MaxBytes int64 `json:"max_bytes"`
}

// Filter is one compiled instance.
type Filter struct {
	max int64
}

// ErrTooLarge is what a streamed body's reader returns once it passes the
// limit; the proxy answers 413 when forwarding fails with it.
var ErrTooLarge = sdk.ErrBodyTooLarge

// New validates the config.
func New(_ *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var c Config
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if c.MaxBytes <= 0 {
		return nil, fmt.Errorf("max_bytes must be > 0 (the largest request body to accept, in bytes)")
	}
	return &Filter{max: c.MaxBytes}, nil
}

// OnRequest refuses announced bodies over the limit at once; a chunked
// (streamed) body is wrapped so that it fails as soon as it crosses the
// limit, before the excess reaches the upstream.
func (f *Filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	req := c.Request()
	cl := req.Header.ContentLength()
	if int64(cl) > f.max {
		c.RequestCtx().SetConnectionClose()
		return c.Fail(413, "request body too large"), nil
	}
	if c.BodyBuffered() {
		if int64(len(c.RequestBody())) > f.max {
			c.RequestCtx().SetConnectionClose()
			return c.Fail(413, "request body too large"), nil
		}
		return sdk.Continue, nil
	}
	if cl >= 0 {
		// Content-Length framing is enforced by the server's reader: the body
		// cannot exceed what was announced, and that is within the limit.
		return sdk.Continue, nil
	}
	lr := limitPool.get()
	lr.Reset(req.BodyStream(), f.max)
	c.SetValue(&limitKey, lr)
	req.SetBodyStream(lr, -1)
	return sdk.Continue, nil
}

// OnResponse releases the limiter and reports an overflow as 413.
func (f *Filter) OnResponse(c *sdk.Ctx) error {
	v, _ := c.Value(&limitKey).(*sdk.LimitedBody)
	if v == nil {
		return nil
	}
	if v.Exceeded {
		c.RequestCtx().SetConnectionClose()
		c.Fail(413, "request body too large")
	}
	limitPool.put(v)
	return nil
}

var limitKey byte
