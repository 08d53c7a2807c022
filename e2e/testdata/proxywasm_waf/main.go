// waf is a large Proxy-Wasm filter built with plain Go (GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared, with the no_fs_access tag Coraza
// needs without a file system): a WAF on the Proxy-Wasm Go SDK and
// github.com/corazawaf/coraza/v3, the rule engine Envoy's
// coraza-proxy-wasm filter uses. It is the "large module" of the start-up
// figures (plugins/wasm/README.md) and of
// e2e TestWasmLargeModuleStartsFromTheCompilationCache: about 30 MB.
//
// The plugin configuration, when not empty, is the SecLang directives;
// by default: the rule engine on, and a request whose arguments hold
// SQL injection (libinjection) or a <script> tag is denied 403.
// Requests are checked in the header phase (URI and headers).
package main

import (
	"github.com/corazawaf/coraza/v3"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const defaultDirectives = `SecRuleEngine On
SecRule ARGS "@detectSQLi" "id:100,phase:1,deny,status:403,msg:'SQL injection'"
SecRule ARGS|REQUEST_HEADERS "@rx (?i)<script" "id:101,phase:1,t:urlDecodeUni,deny,status:403,msg:'script tag'"
`

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	waf coraza.WAF
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	directives := defaultDirectives
	if conf, err := proxywasm.GetPluginConfiguration(); err == nil && len(conf) > 0 {
		directives = string(conf)
	}
	waf, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(directives))
	if err != nil {
		proxywasm.LogCriticalf("waf: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.waf = waf
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{waf: p.waf} }

type stream struct {
	types.DefaultHttpContext
	waf coraza.WAF
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	tx := s.waf.NewTransaction()
	defer tx.Close()
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	method, _ := proxywasm.GetHttpRequestHeader(":method")
	tx.ProcessURI(path, method, "HTTP/1.1")
	headers, _ := proxywasm.GetHttpRequestHeaders()
	for _, h := range headers {
		tx.AddRequestHeader(h[0], h[1])
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		proxywasm.LogWarnf("waf: rule %d denied %s %s", it.RuleID, method, path)
		_ = proxywasm.SendHttpResponse(uint32(it.Status), nil, []byte("denied by the WAF\n"), -1)
		return types.ActionPause
	}
	return types.ActionContinue
}
