package wasm

// Values of the Proxy-Wasm ABI 0.2.1, from
// https://github.com/proxy-wasm/spec/blob/main/abi-versions/v0.2.1/README.md#types

// status is proxy_status_t, what every host function returns.
type status uint32

const (
	statusOK                  status = 0
	statusNotFound            status = 1
	statusBadArgument         status = 2
	statusSerializationFailed status = 3
	statusParseFailure        status = 4
	statusInvalidMemoryAccess status = 6
	statusEmpty               status = 7
	statusCASMismatch         status = 8
	statusInternalFailure     status = 10
	statusUnimplemented       status = 12
)

// Log levels (proxy_log_level_t).
const (
	logTrace    = 0
	logDebug    = 1
	logInfo     = 2
	logWarn     = 3
	logError    = 4
	logCritical = 5
)

// Actions (proxy_action_t) returned by the HTTP callbacks.
const (
	actionContinue = 0
	actionPause    = 1
)

// Buffer types (proxy_buffer_type_t).
const (
	bufferRequestBody         = 0
	bufferResponseBody        = 1
	bufferDownstreamData      = 2
	bufferUpstreamData        = 3
	bufferHTTPCallResponse    = 4
	bufferGRPCMessage         = 5
	bufferVMConfiguration     = 6
	bufferPluginConfiguration = 7
	bufferForeignArguments    = 8
)

// Map types (proxy_map_type_t).
const (
	mapRequestHeaders   = 0
	mapRequestTrailers  = 1
	mapResponseHeaders  = 2
	mapResponseTrailers = 3
	// 4 and 5 are gRPC metadata, never available here.
	mapHTTPCallResponseHeaders  = 6
	mapHTTPCallResponseTrailers = 7
	mapLast                     = 7
)

// Stream types (proxy_stream_type_t).
const (
	streamHTTPRequest  = 0
	streamHTTPResponse = 1
)

// Metric types (proxy_metric_type_t).
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
)

// rootContextID is the plugin (root) context of every instance; HTTP
// contexts get IDs above it.
const rootContextID = 1
