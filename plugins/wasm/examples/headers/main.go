//go:build wasip1

// Command headers is an example Proxy-Wasm (ABI 0.2.1) HTTP filter for
// Weir's wasm plugin, written against the ABI directly with the standard
// Go toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o headers.wasm .
//
// It answers 403 when the request carries `<block_header>: 1`, otherwise
// adds the configured request headers plus x-wasm-path (the request.path
// property), sets the configured response headers, and can append a suffix
// to buffered response bodies. It sees the request body too (the gateway
// buffers bodies up to 256 KiB before filters run): it answers 403 when
// the body contains block_body, and can append a suffix to it. Its
// configuration is the plugin's `config` object, as JSON:
//
//	{"request_headers": {"X-Wasm-Added": "yes"},
//	 "response_headers": {"X-Wasm-Filter": "headers"},
//	 "block_header": "X-Block",
//	 "block_body": "",
//	 "request_body_suffix": "",
//	 "response_body_suffix": ""}
//
// A configuration that is not such an object is refused from
// proxy_on_configure, which the gateway reports as a config error.
package main

import (
	"encoding/json"
	"strings"
	"unsafe"
)

func main() {}

type config struct {
	RequestHeaders     map[string]string `json:"request_headers"`
	ResponseHeaders    map[string]string `json:"response_headers"`
	BlockHeader        string            `json:"block_header"`
	BlockBody          string            `json:"block_body"`
	RequestBodySuffix  string            `json:"request_body_suffix"`
	ResponseBodySuffix string            `json:"response_body_suffix"`
}

var (
	conf = config{BlockHeader: "x-block"}
	// requests counts requests seen, as a host metric.
	requests   uint32
	haveMetric bool
	// contexts holds per-request state by context ID: one module instance
	// serves many requests whose phases interleave.
	contexts = map[uint32]*httpContext{}
)

type httpContext struct {
	path string
}

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

// proxy_on_memory_allocate gives the host room for the buffers it
// returns. The slice stays reachable through the pointer the guest reads
// right after the host call; Go's collector does not move objects.
//
//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) unsafe.Pointer {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	return unsafe.Pointer(&b[0])
}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(contextID, rootID uint32) {
	if rootID != 0 {
		contexts[contextID] = &httpContext{}
	}
}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(rootID, vmConfigSize uint32) uint32 { return 1 }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(rootID, configSize uint32) uint32 {
	if configSize > 0 {
		var data *byte
		var size uint32
		if proxyGetBufferBytes(bufferPluginConfiguration, 0, configSize, unsafe.Pointer(&data), unsafe.Pointer(&size)) != statusOK {
			logf(logWarn, "headers: cannot read the plugin configuration")
			return 0
		}
		if err := json.Unmarshal(hostBytes(data, size), &conf); err != nil {
			logf(logWarn, "headers: configuration is not a JSON object: "+err.Error())
			return 0
		}
	}
	conf.BlockHeader = strings.ToLower(conf.BlockHeader)
	name := "headers_example_requests"
	haveMetric = proxyDefineMetric(0, ptr(name), uint32(len(name)), unsafe.Pointer(&requests)) == statusOK
	logf(logDebug, "headers: configured")
	return 1
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	if haveMetric {
		proxyIncrementMetric(requests, 1)
	}
	if v, ok := headerValue(mapRequestHeaders, conf.BlockHeader); ok && v == "1" {
		body := "blocked by the headers example\n"
		headers := serializePairs([][2]string{{"content-type", "text/plain"}, {"x-blocked-by", "headers-example"}})
		details := "blocked_by_wasm"
		proxySendLocalResponse(403, ptr(details), uint32(len(details)), ptr(body), uint32(len(body)), bptr(headers), uint32(len(headers)), -1)
		return actionPause
	}
	for k, v := range conf.RequestHeaders {
		addHeader(mapRequestHeaders, k, v)
	}
	if path, ok := property("request\x00path"); ok {
		if hc := contexts[contextID]; hc != nil {
			hc.path = path
		}
		replaceHeader(mapRequestHeaders, "x-wasm-path", path)
	}
	return actionContinue
}

//go:wasmexport proxy_on_request_body
func proxyOnRequestBody(contextID, bodySize, endOfStream uint32) uint32 {
	if endOfStream == 0 {
		// Not the whole body yet: ask the host to buffer the rest.
		return actionPause
	}
	if conf.BlockBody != "" && bodySize > 0 {
		var data *byte
		var size uint32
		if proxyGetBufferBytes(bufferRequestBody, 0, bodySize, unsafe.Pointer(&data), unsafe.Pointer(&size)) == statusOK &&
			strings.Contains(string(hostBytes(data, size)), conf.BlockBody) {
			body := "request body blocked by the headers example\n"
			headers := serializePairs([][2]string{{"content-type", "text/plain"}, {"x-blocked-by", "headers-example"}})
			details := "blocked_by_wasm"
			proxySendLocalResponse(403, ptr(details), uint32(len(details)), ptr(body), uint32(len(body)), bptr(headers), uint32(len(headers)), -1)
			return actionPause
		}
	}
	if s := conf.RequestBodySuffix; s != "" {
		// start at the end, replacing nothing: an append.
		proxySetBufferBytes(bufferRequestBody, bodySize, 0, ptr(s), uint32(len(s)))
	}
	return actionContinue
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	for k, v := range conf.ResponseHeaders {
		replaceHeader(mapResponseHeaders, k, v)
	}
	return actionContinue
}

//go:wasmexport proxy_on_response_body
func proxyOnResponseBody(contextID, bodySize, endOfStream uint32) uint32 {
	if conf.ResponseBodySuffix != "" && endOfStream != 0 {
		s := conf.ResponseBodySuffix
		// start at the end, replacing nothing: an append.
		proxySetBufferBytes(bufferResponseBody, bodySize, 0, ptr(s), uint32(len(s)))
	}
	return actionContinue
}

//go:wasmexport proxy_on_done
func proxyOnDone(contextID uint32) uint32 { return 1 }

//go:wasmexport proxy_on_log
func proxyOnLog(contextID uint32) {
	if hc := contexts[contextID]; hc != nil && hc.path != "" {
		logf(logDebug, "headers: done with "+hc.path)
	}
}

//go:wasmexport proxy_on_delete
func proxyOnDelete(contextID uint32) {
	delete(contexts, contextID)
}
