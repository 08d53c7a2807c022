// metrics does what the Proxy-Wasm Go SDK's metrics example does: for
// each value of the request header "my-custom-header" it defines a
// counter named
// "custom_header_value_counts_value=<value>_reporter=wasmgosdk" and
// counts the requests that carry that value.
package main

import (
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

var counters = map[string]proxywasm.MetricCounter{}

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	v, err := proxywasm.GetHttpRequestHeader("my-custom-header")
	if err != nil {
		return types.ActionContinue
	}
	c, ok := counters[v]
	if !ok {
		c = proxywasm.DefineCounterMetric("custom_header_value_counts_value=" + v + "_reporter=wasmgosdk")
		counters[v] = c
	}
	c.Increment(1)
	return types.ActionContinue
}
