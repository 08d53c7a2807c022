// postpone_requests does what the Proxy-Wasm Go SDK's postpone_requests
// example does: it asks for a tick every second, pauses every request
// (recording its context ID) and, on each tick, resumes the requests it
// postponed by switching to their contexts (SetEffectiveContext) and
// calling ResumeHttpRequest.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const tickMilliseconds = 1000

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	postponed []uint32
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	if err := proxywasm.SetTickPeriodMilliSeconds(tickMilliseconds); err != nil {
		proxywasm.LogCriticalf("failed to set tick period: %v", err)
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	for _, id := range p.postponed {
		proxywasm.LogInfof("resume request with contextID=%v", id)
		_ = proxywasm.SetEffectiveContext(id)
		_ = proxywasm.ResumeHttpRequest()
	}
	p.postponed = p.postponed[:0]
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext { return &stream{p: p, id: id} }

type stream struct {
	types.DefaultHttpContext
	p  *plugin
	id uint32
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogInfof("postpone request with contextID=%d", s.id)
	s.p.postponed = append(s.p.postponed, s.id)
	return types.ActionPause
}
