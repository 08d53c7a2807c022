// Package requesttransformer is the request_transformer plugin: it adds,
// sets, removes and renames request headers and query arguments, rewrites
// the upstream path from route parameters, and sets or removes fields of
// JSON request bodies (README.md beside this file). README.md describes
// the config, the order of operations and the limits.
package requesttransformer

import (
	"encoding/json"

	"github.com/weirgw/weir/plugins/internal/transform"
	"github.com/weirgw/weir/sdk"
)

// Name is the plugin's name in config files.
const Name = "request_transformer"

func init() {
	sdk.Register(sdk.Factory{Name: Name, New: New})
}

// Filter is one request_transformer instance. It holds only the compiled
// program, which is immutable: one Filter serves every request of its
// snapshot concurrently.
type Filter struct {
	p *transform.Program
}

// New validates and compiles the config (sdk.Factory.New).
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	p, err := transform.Compile(b, raw, transform.Request, Name)
	if err != nil {
		return nil, err
	}
	return &Filter{p: p}, nil
}

// OnRequest edits the request before it is forwarded (sdk.Filter).
func (f *Filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	return f.p.ApplyRequest(c)
}
