// tcp_only is a Proxy-Wasm network (TCP) filter written without an SDK:
// it exports the connection callbacks (proxy_on_new_connection,
// proxy_on_downstream_data) and no HTTP callback, as a hand-written or
// trimmed network filter does. Weir must refuse it at load.
package main

import "unsafe"

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

var heap [][]byte

//go:wasmexport proxy_on_memory_allocate
func allocate(size uint32) uint32 {
	b := make([]byte, size+1)
	heap = append(heap, b)
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, root uint32) {}

//go:wasmexport proxy_on_configure
func onConfigure(id, size uint32) uint32 { return 1 }

//go:wasmexport proxy_on_new_connection
func onNewConnection(id uint32) uint32 { return 0 }

//go:wasmexport proxy_on_downstream_data
func onDownstreamData(id, size, eos uint32) uint32 { return 0 }
