// properties does what the Proxy-Wasm Go SDK's properties example does
// (401 unless the request carries the header named by the route's
// metadata, route_metadata.filter_metadata.envoy.filters.http.wasm.auth;
// a route without it lets every request through) and, to show what the
// host provides, copies the properties SDK filters read into request
// headers x-prop-<name> (strings as they are, integers in decimal) and
// response.code and response.headers.content-type into response headers.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"
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

type stream struct{ types.DefaultHttpContext }

var (
	strs = []string{"plugin_name", "plugin_root_id", "plugin_vm_id", "route_name", "cluster_name", "xds.route_name", "xds.cluster_name",
		"request.path", "request.url_path", "request.host", "request.method", "request.scheme", "request.protocol", "request.query",
		"request.id", "request.useragent", "request.headers.x-probe", "source.address", "destination.address", "connection.tls_version"}
	ints = []string{"source.port", "destination.port", "request.size"}
)

func prop(name string) ([]byte, error) { return proxywasm.GetProperty(strings.Split(name, ".")) }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	auth, err := proxywasm.GetProperty([]string{"route_metadata", "filter_metadata", "envoy.filters.http.wasm", "auth"})
	switch {
	case errors.Is(err, types.ErrorStatusNotFound):
		proxywasm.LogInfo("no auth header for route")
	case err != nil:
		proxywasm.LogCriticalf("failed to read properties: %v", err)
	default:
		if _, err := proxywasm.GetHttpRequestHeader(string(auth)); err != nil {
			_ = proxywasm.SendHttpResponse(401, nil, nil, -1)
			return types.ActionPause
		}
	}
	for _, name := range strs {
		v, err := prop(name)
		if err != nil {
			v = []byte("error: " + err.Error())
		}
		_ = proxywasm.AddHttpRequestHeader("x-prop-"+name, string(v))
	}
	for _, name := range ints {
		_ = proxywasm.AddHttpRequestHeader("x-prop-"+name, integer(prop(name)))
	}
	_ = proxywasm.AddHttpRequestHeader("x-prop-mtls", integer(prop("connection.mtls")))
	return types.ActionContinue
}

func (*stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-prop-response.code", integer(prop("response.code")))
	ct, err := prop("response.headers.content-type")
	if err != nil {
		ct = []byte("error: " + err.Error())
	}
	_ = proxywasm.AddHttpResponseHeader("x-prop-response.content-type", string(ct))
	return types.ActionContinue
}

func integer(v []byte, err error) string {
	switch {
	case err != nil:
		return "error: " + err.Error()
	case len(v) == 8:
		return strconv.FormatUint(binary.LittleEndian.Uint64(v), 10)
	case len(v) == 1:
		return strconv.Itoa(int(v[0]))
	}
	return "bad size " + strconv.Itoa(len(v))
}
