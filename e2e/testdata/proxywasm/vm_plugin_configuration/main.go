// vm_plugin_configuration does what the Proxy-Wasm Go SDK's
// vm_plugin_configuration example does: it reads the VM configuration in
// OnVMStart and the plugin configuration in OnPluginStart, and logs
// both.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) OnVMStart(size int) types.OnVMStartStatus {
	data, err := proxywasm.GetVMConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("error reading vm configuration: %v", err)
	}
	proxywasm.LogInfof("vm config (%d bytes): %s", size, data)
	return types.OnVMStartStatusOK
}

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) OnPluginStart(size int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("error reading plugin configuration: %v", err)
	}
	proxywasm.LogInfof("plugin config (%d bytes): %s", size, data)
	return types.OnPluginStartStatusOK
}
