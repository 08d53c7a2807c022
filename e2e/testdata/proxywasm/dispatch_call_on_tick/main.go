// dispatch_call_on_tick does what the Proxy-Wasm Go SDK's
// dispatch_call_on_tick example does: every tick (100 ms here) the root
// context calls the cluster "httpbin" (a Weir service) with
// DispatchHttpCall; the answer's callback, also in the root context,
// counts it in the metric "tick_calls" and logs its status and body
// size.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const tickMilliseconds = 100

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(id uint32) types.PluginContext { return &plugin{id: id} }

type plugin struct {
	types.DefaultPluginContext
	id    uint32
	calls proxywasm.MetricCounter
	n     int
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	p.calls = proxywasm.DefineCounterMetric("tick_calls")
	if err := proxywasm.SetTickPeriodMilliSeconds(tickMilliseconds); err != nil {
		proxywasm.LogCriticalf("failed to set tick period: %v", err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	p.n++
	headers := [][2]string{{":method", "GET"}, {":authority", "tick.example"}, {":path", "/tick"}, {"accept", "*/*"}}
	if _, err := proxywasm.DispatchHttpCall("httpbin", headers, nil, nil, 5000, p.answer); err != nil {
		proxywasm.LogCriticalf("dispatch on tick %d failed: %v", p.n, err)
	}
}

func (p *plugin) answer(numHeaders, bodySize, numTrailers int) {
	hs, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		proxywasm.LogCriticalf("no answer headers: %v", err)
		return
	}
	status := ""
	for _, h := range hs {
		if h[0] == ":status" {
			status = h[1]
		}
	}
	p.calls.Increment(1)
	proxywasm.LogInfof("tick call answered: status %s, %d body bytes", status, bodySize)
}
