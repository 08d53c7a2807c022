// request_body_rewrite is the bench's request-body filter (bench/scenarios
// 65-wasm-request-body.yaml, weirbench's wasm.go): it buffers the whole
// request body, as the SDK's http_body example does (Pause until the end
// of the stream), and replaces it with a copy in which every "weir" is
// "WEIR-GW", so the upstream gets a longer body with a Content-Length to
// match.
package main

import (
	"bytes"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

// OnHttpRequestHeaders drops the client's Content-Length, which the new
// body does not keep (the SDK's http_body example does the same).
func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	_ = proxywasm.RemoveHttpRequestHeader("content-length")
	return types.ActionContinue
}

func (*stream) OnHttpRequestBody(size int, eos bool) types.Action {
	if !eos {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("reading the request body: %v", err)
		return types.ActionContinue
	}
	if err := proxywasm.ReplaceHttpRequestBody(bytes.ReplaceAll(body, []byte("weir"), []byte("WEIR-GW"))); err != nil {
		proxywasm.LogErrorf("replacing the request body: %v", err)
	}
	return types.ActionContinue
}
