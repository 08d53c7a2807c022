// http_auth_random does what the Proxy-Wasm Go SDK's http_auth_random
// example does: every request is paused while the filter calls the
// cluster "httpbin" with the request's own headers; when the answer
// comes, it logs the answer's headers and hashes its body (FNV-1a 32):
// an even hash resumes the request, an odd one answers 403 "access
// forbidden" with "powered-by: proxy-wasm-go-sdk!!".
package main

import (
	"hash/fnv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const cluster = "httpbin"

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get request headers: %v", err)
		return types.ActionContinue
	}
	if _, err := proxywasm.DispatchHttpCall(cluster, hs, nil, nil, 50000, onAnswer); err != nil {
		proxywasm.LogCriticalf("dispatch httpcall failed: %v", err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("http call dispatched to %s", cluster)
	return types.ActionPause
}

func onAnswer(_, bodySize, _ int) {
	hs, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get response headers: %v", err)
		return
	}
	for _, h := range hs {
		proxywasm.LogInfof("response header from %s: %s: %s", cluster, h[0], h[1])
	}
	b, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
	if err != nil {
		proxywasm.LogCriticalf("failed to get response body: %v", err)
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	h := fnv.New32a()
	h.Write(b)
	if h.Sum32()%2 == 0 {
		proxywasm.LogInfo("access granted")
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	proxywasm.LogInfo("access forbidden")
	if err := proxywasm.SendHttpResponse(403, [][2]string{{"powered-by", "proxy-wasm-go-sdk!!"}}, []byte("access forbidden"), -1); err != nil {
		proxywasm.LogErrorf("failed to send local response: %v", err)
		_ = proxywasm.ResumeHttpRequest()
	}
}
