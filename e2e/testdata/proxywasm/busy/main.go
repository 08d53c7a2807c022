// busy is a well-behaved Go SDK filter for the contention test, with one
// misbehaving path: it replaces the request header "test", reads every
// request header and adds "x-busy: ok" to the response (keeping no state
// between the two, so a context the host re-created after another
// request's fault behaves the same); a request with "x-loop: 1" makes it
// loop forever in proxy_on_request_headers.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

// spin is a package variable so that the compiler keeps the loop.
var spin uint64

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if v, err := proxywasm.GetHttpRequestHeader("x-loop"); err == nil && v == "1" {
		for {
			spin++
		}
	}
	_ = proxywasm.ReplaceHttpRequestHeader("test", "best")
	_, _ = proxywasm.GetHttpRequestHeaders()
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-busy", "ok")
	return types.ActionContinue
}
