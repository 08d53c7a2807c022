//go:build wasip1

package main

// The host functions of Proxy-Wasm ABI 0.2.1 this example uses, declared
// by hand: the standard Go toolchain (1.24+) imports them with
// //go:wasmimport and exports callbacks with //go:wasmexport, so no SDK is
// needed. Pointers are passed as unsafe.Pointer (an i32 address in the
// module's linear memory); sizes are uint32.
//
// Spec: https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1

import "unsafe"

// Status codes (proxy_status_t).
const (
	statusOK       = 0
	statusNotFound = 1
)

// Map types (proxy_map_type_t).
const (
	mapRequestHeaders  = 0
	mapResponseHeaders = 2
)

// Buffer types (proxy_buffer_type_t).
const (
	bufferRequestBody         = 0
	bufferResponseBody        = 1
	bufferPluginConfiguration = 7
)

// Log levels (proxy_log_level_t).
const (
	logDebug = 1
	logInfo  = 2
	logWarn  = 3
)

// Actions (proxy_action_t).
const (
	actionContinue = 0
	actionPause    = 1
)

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(buffer, start, max uint32, retData, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(buffer, start, size uint32, data unsafe.Pointer, dataSize uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, retData, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(mapType uint32, key unsafe.Pointer, keySize uint32, value unsafe.Pointer, valueSize uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path unsafe.Pointer, pathSize uint32, retData, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details unsafe.Pointer, detailsSize uint32, body unsafe.Pointer, bodySize uint32, headers unsafe.Pointer, headersSize uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType uint32, name unsafe.Pointer, nameSize uint32, retID unsafe.Pointer) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, delta int64) uint32

// ptr returns the address of s's bytes (nil for an empty string, which
// the host accepts with a size of 0).
func ptr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

func bptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// hostBytes turns a buffer the host returned (allocated through
// proxy_on_memory_allocate) into a slice. The host writes a 32-bit address
// into the low half of data, which is zero-initialised.
func hostBytes(data *byte, size uint32) []byte {
	if data == nil || size == 0 {
		return nil
	}
	return unsafe.Slice(data, size)
}

func logf(level uint32, msg string) {
	proxyLog(level, ptr(msg), uint32(len(msg)))
}

// headerValue reads one header of mapType.
func headerValue(mapType uint32, key string) (string, bool) {
	var data *byte
	var size uint32
	if proxyGetHeaderMapValue(mapType, ptr(key), uint32(len(key)), unsafe.Pointer(&data), unsafe.Pointer(&size)) != statusOK {
		return "", false
	}
	return string(hostBytes(data, size)), true
}

func addHeader(mapType uint32, key, value string) {
	proxyAddHeaderMapValue(mapType, ptr(key), uint32(len(key)), ptr(value), uint32(len(value)))
}

func replaceHeader(mapType uint32, key, value string) {
	proxyReplaceHeaderMapValue(mapType, ptr(key), uint32(len(key)), ptr(value), uint32(len(value)))
}

// property reads a host property such as "request.path". Path segments
// are separated by NUL bytes, as the SDKs serialise them.
func property(path string) (string, bool) {
	var data *byte
	var size uint32
	if proxyGetProperty(ptr(path), uint32(len(path)), unsafe.Pointer(&data), unsafe.Pointer(&size)) != statusOK {
		return "", false
	}
	return string(hostBytes(data, size)), true
}

// serializePairs encodes headers as the ABI's map serialisation: a count,
// then each key and value size, then each key and value followed by NUL.
func serializePairs(pairs [][2]string) []byte {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + len(p[1]) + 2
	}
	out := make([]byte, 0, size)
	out = appendU32(out, uint32(len(pairs)))
	for _, p := range pairs {
		out = appendU32(out, uint32(len(p[0])))
		out = appendU32(out, uint32(len(p[1])))
	}
	for _, p := range pairs {
		out = append(out, p[0]...)
		out = append(out, 0)
		out = append(out, p[1]...)
		out = append(out, 0)
	}
	return out
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}
