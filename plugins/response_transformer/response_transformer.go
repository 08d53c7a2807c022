// Package responsetransformer is the response_transformer plugin: it adds,
// sets, removes and renames response headers and sets or removes fields of
// JSON response bodies (README.md beside this file). README.md describes
// the config, the limits and how it combines with the cache plugin.
package responsetransformer

import (
	"encoding/json"

	"github.com/weirgw/weir/plugins/internal/transform"
	"github.com/weirgw/weir/sdk"
)

// Name is the plugin's name in config files.
const Name = "response_transformer"

func init() {
	sdk.Register(sdk.Factory{Name: Name, New: New})
}

// Filter is one response_transformer instance. It holds only the compiled
// program, which is immutable: one Filter serves every request of its
// snapshot concurrently.
type Filter struct {
	p *transform.Program
}

// New validates and compiles the config (sdk.Factory.New).
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	p, err := transform.Compile(b, raw, transform.Response, Name)
	if err != nil {
		return nil, err
	}
	return &Filter{p: p}, nil
}

// OnRequest prepares the request when the config edits JSON bodies: it
// removes Accept-Encoding, Range and If-Range so that the upstream answers
// with a whole, uncompressed body that can be edited (sdk.Filter).
func (f *Filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	return f.p.ApplyRequest(c)
}

// OnResponse edits the response (sdk.ResponseFilter).
func (f *Filter) OnResponse(c *sdk.Ctx) error {
	return f.p.ApplyResponse(c)
}
