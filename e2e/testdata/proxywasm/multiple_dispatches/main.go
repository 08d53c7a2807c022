// multiple_dispatches does what the Proxy-Wasm Go SDK's
// multiple_dispatches example does: when the response headers arrive it
// makes 10 calls to the cluster "httpbin" (GET /) and pauses the
// response; when the last call has answered, it adds
// "total-dispatched: 10" to the response and resumes it.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const calls = 10

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct {
	types.DefaultHttpContext
	pending int
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	for i := 0; i < calls; i++ {
		hs := [][2]string{{":path", "/"}, {":method", "GET"}, {":authority", ""}}
		if _, err := proxywasm.DispatchHttpCall("httpbin", hs, nil, nil, 50000, s.answered); err != nil {
			panic(err)
		}
		s.pending++
	}
	return types.ActionPause
}

func (s *stream) answered(int, int, int) {
	s.pending--
	if s.pending > 0 {
		proxywasm.LogInfof("pending dispatched requests: %d", s.pending)
		return
	}
	_ = proxywasm.AddHttpResponseHeader("total-dispatched", strconv.Itoa(calls))
	_ = proxywasm.ResumeHttpResponse()
	proxywasm.LogInfof("response resumed after processed %d dispatched request", calls)
}
