// http_headers does what the Proxy-Wasm Go SDK's http_headers example
// does: it replaces the request header "test" with "best", logs the request
// and response headers, and adds "x-proxy-wasm-go-sdk-example:
// http_headers" plus the header named by its configuration
// ({"header": name, "value": value}) to every response.
package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	name, value string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(data) == 0 {
		return types.OnPluginStartStatusOK
	}
	var c struct{ Header, Value string }
	if json.Unmarshal(data, &c) != nil || c.Header == "" || c.Value == "" {
		proxywasm.LogCritical(`invalid configuration; expected {"header": "<name>", "value": "<value>"}`)
		return types.OnPluginStartStatusFailed
	}
	p.name, p.value = c.Header, c.Value
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &stream{p: p, id: id} }

type stream struct {
	types.DefaultHttpContext
	p  *plugin
	id uint32
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.ReplaceHttpRequestHeader("test", "best"); err != nil {
		proxywasm.LogCritical("failed to set request header: test")
	}
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get request headers: %v", err)
	}
	for _, h := range hs {
		proxywasm.LogInfof("request header --> %s: %s", h[0], h[1])
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-proxy-wasm-go-sdk-example", "http_headers"); err != nil {
		proxywasm.LogCriticalf("failed to set response header: %v", err)
	}
	if s.p.name != "" {
		if err := proxywasm.AddHttpResponseHeader(s.p.name, s.p.value); err != nil {
			proxywasm.LogCriticalf("failed to set response header: %v", err)
		}
	}
	hs, _ := proxywasm.GetHttpResponseHeaders()
	for _, h := range hs {
		proxywasm.LogInfof("response header <-- %s: %s", h[0], h[1])
	}
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() { proxywasm.LogInfof("%d finished", s.id) }
