// shared_data does what the Proxy-Wasm Go SDK's shared_data example
// does: OnVMStart sets the shared key "shared_data_key" to empty, and
// every request increments the 8-byte little-endian counter under it
// with compare-and-swap (retrying on a CAS mismatch) and logs
// "shared value: <n>".
package main

import (
	"encoding/binary"
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const key = "shared_data_key"

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{}

func (*vm) OnVMStart(int) types.OnVMStartStatus {
	if err := proxywasm.SetSharedData(key, []byte{}, 0); err != nil {
		proxywasm.LogWarnf("error setting shared data on OnVMStart: %v", err)
	}
	return types.OnVMStartStatusOK
}

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	for {
		n, err := increment()
		if err == nil {
			proxywasm.LogInfof("shared value: %d", n)
		} else if errors.Is(err, types.ErrorStatusCasMismatch) {
			continue
		}
		return types.ActionContinue
	}
}

func increment() (uint64, error) {
	data, cas, err := proxywasm.GetSharedData(key)
	if err != nil {
		return 0, err
	}
	n := uint64(1)
	if len(data) >= 8 {
		n = binary.LittleEndian.Uint64(data) + 1
	}
	buf := binary.LittleEndian.AppendUint64(nil, n)
	return n, proxywasm.SetSharedData(key, buf, cas)
}
