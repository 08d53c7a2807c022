// http_body does what the Proxy-Wasm Go SDK's http_body example does:
// a request without Content-Length is answered 400 "content must be
// provided"; otherwise the request body (or, with "buffer-replace-at:
// response", the response body) is changed by the operation named in
// "buffer-operation": append "[this is appended body]", prepend
// "[this is prepended body]", or (the default) replace it with
// "[this is replaced body]". With the plugin configuration "echo", every
// request is answered 200 with its own body.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct {
	types.DefaultPluginContext
	echo bool
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, _ := proxywasm.GetPluginConfiguration()
	p.echo = string(data) == "echo"
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext {
	if p.echo {
		return &echo{}
	}
	return &setBody{}
}

type setBody struct {
	types.DefaultHttpContext
	atResponse bool
	op         string
}

func (s *setBody) OnHttpRequestHeaders(int, bool) types.Action {
	if v, err := proxywasm.GetHttpRequestHeader("buffer-replace-at"); err == nil && v == "response" {
		s.atResponse = true
	}
	if _, err := proxywasm.GetHttpRequestHeader("content-length"); err != nil {
		if err := proxywasm.SendHttpResponse(400, nil, []byte("content must be provided"), -1); err != nil {
			panic(err)
		}
		return types.ActionPause
	}
	if err := proxywasm.RemoveHttpRequestHeader("content-length"); err != nil {
		panic(err)
	}
	s.op, _ = proxywasm.GetHttpRequestHeader("buffer-operation")
	if s.op != "append" && s.op != "prepend" {
		s.op = "replace"
	}
	return types.ActionContinue
}

func (s *setBody) change(get func(int, int) ([]byte, error), app, pre, rep func([]byte) error, size int, eos bool, what string) types.Action {
	if !eos {
		return types.ActionPause
	}
	orig, err := get(0, size)
	if err != nil {
		proxywasm.LogErrorf("failed to get %s body: %v", what, err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("original %s body: %s", what, orig)
	switch s.op {
	case "append":
		err = app([]byte("[this is appended body]"))
	case "prepend":
		err = pre([]byte("[this is prepended body]"))
	default:
		err = rep([]byte("[this is replaced body]"))
	}
	if err != nil {
		proxywasm.LogErrorf("failed to %s %s body: %v", s.op, what, err)
	}
	return types.ActionContinue
}

func (s *setBody) OnHttpRequestBody(size int, eos bool) types.Action {
	if s.atResponse {
		return types.ActionContinue
	}
	return s.change(proxywasm.GetHttpRequestBody, proxywasm.AppendHttpRequestBody, proxywasm.PrependHttpRequestBody, proxywasm.ReplaceHttpRequestBody, size, eos, "request")
}

func (s *setBody) OnHttpResponseHeaders(int, bool) types.Action {
	if s.atResponse {
		if err := proxywasm.RemoveHttpResponseHeader("content-length"); err != nil {
			panic(err)
		}
	}
	return types.ActionContinue
}

func (s *setBody) OnHttpResponseBody(size int, eos bool) types.Action {
	if !s.atResponse {
		return types.ActionContinue
	}
	return s.change(proxywasm.GetHttpResponseBody, proxywasm.AppendHttpResponseBody, proxywasm.PrependHttpResponseBody, proxywasm.ReplaceHttpResponseBody, size, eos, "response")
}

type echo struct{ types.DefaultHttpContext }

func (*echo) OnHttpRequestBody(size int, eos bool) types.Action {
	if !eos {
		return types.ActionPause
	}
	body, _ := proxywasm.GetHttpRequestBody(0, size)
	if err := proxywasm.SendHttpResponse(200, nil, body, -1); err != nil {
		panic(err)
	}
	return types.ActionPause
}
