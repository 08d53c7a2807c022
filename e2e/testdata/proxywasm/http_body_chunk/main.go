// http_body_chunk does what the Proxy-Wasm Go SDK's http_body_chunk
// example does: it reads the request body chunk by chunk (each call's
// body size minus what it read so far), answers 403 as soon as a chunk
// contains "pattern", and pauses until end_of_stream otherwise. It logs
// each call's size and end_of_stream, so a test sees how the body came.
package main

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct {
	types.DefaultHttpContext
	read int
}

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	proxywasm.LogInfof("body call: size %d, end_of_stream %v", bodySize, endOfStream)
	if n := bodySize - s.read; n > 0 {
		chunk, err := proxywasm.GetHttpRequestBody(s.read, n)
		if err != nil {
			proxywasm.LogCriticalf("failed to get the body: %v", err)
			return types.ActionContinue
		}
		s.read += len(chunk)
		if strings.Contains(string(chunk), "pattern") {
			_ = proxywasm.SendHttpResponse(403, [][2]string{{"powered-by", "proxy-wasm-go-sdk!!"}}, []byte(`pattern "pattern" found in the body`), -1)
			return types.ActionPause
		}
	}
	if !endOfStream {
		return types.ActionPause
	}
	return types.ActionContinue
}
