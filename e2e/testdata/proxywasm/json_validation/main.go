// json_validation does what the Proxy-Wasm Go SDK's json_validation
// example does: a request whose content-type is not application/json is
// answered 403 "content-type must be provided"; a body that is not JSON,
// or lacks one of the keys listed in the configuration's "requiredKeys",
// is answered 403 "invalid payload"; anything else goes through.
package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	required []string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("error reading plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if len(data) == 0 {
		return types.OnPluginStartStatusOK
	}
	var c struct {
		RequiredKeys []string `json:"requiredKeys"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		proxywasm.LogCriticalf("error parsing plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.required = c.RequiredKeys
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{required: p.required} }

type stream struct {
	types.DefaultHttpContext
	size     int
	required []string
}

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	if ct, err := proxywasm.GetHttpRequestHeader("content-type"); err != nil || ct != "application/json" {
		if err := proxywasm.SendHttpResponse(403, nil, []byte("content-type must be provided"), -1); err != nil {
			panic(err)
		}
		return types.ActionPause
	}
	return types.ActionContinue
}

func (s *stream) OnHttpRequestBody(size int, eos bool) types.Action {
	s.size += size
	if !eos {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, s.size)
	if err != nil {
		proxywasm.LogErrorf("failed to get request body: %v", err)
		return types.ActionContinue
	}
	var doc map[string]any
	ok := json.Unmarshal(body, &doc) == nil
	for _, k := range s.required {
		if _, has := doc[k]; !has {
			ok = false
		}
	}
	if !ok {
		if err := proxywasm.SendHttpResponse(403, nil, []byte("invalid payload"), -1); err != nil {
			proxywasm.LogErrorf("failed to send the 403 response: %v", err)
		}
		return types.ActionPause
	}
	return types.ActionContinue
}
