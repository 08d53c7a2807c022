// body_rewrite is the bench's body filter (bench/scenarios, weirbench's
// wasm.go), the Go SDK counterpart of the weir+lua_body scenario: it
// reads the whole response body and replaces it with a copy in which
// every "a" is "A".
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

func (*stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.RemoveHttpResponseHeader("content-length")
	return types.ActionContinue
}

func (*stream) OnHttpResponseBody(size int, eos bool) types.Action {
	if !eos {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpResponseBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("reading the body: %v", err)
		return types.ActionContinue
	}
	if err := proxywasm.ReplaceHttpResponseBody(bytes.ReplaceAll(body, []byte("a"), []byte("A"))); err != nil {
		proxywasm.LogErrorf("replacing the body: %v", err)
	}
	return types.ActionContinue
}
