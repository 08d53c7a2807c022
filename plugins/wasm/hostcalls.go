package wasm

import (
	"context"
	"log/slog"
	"time"

	"github.com/weirgw/weir/internal/httpsyntax"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The host functions of the "env" module. Every one of them:
//   - reads its arguments from the stack before writing its result;
//   - bounds-checks every pointer and length from the guest (a bad one
//     gives INVALID_MEMORY_ACCESS, never a host panic);
//   - answers with a proxy_status_t instead of trapping, including for the
//     parts of the ABI Weir does not implement (HTTP/gRPC callouts, shared
//     queues, foreign functions).
// Guest memory views are only used before the host calls back into the
// guest (its allocator), since that may grow and move the memory.

// hostFn implements one host function; s holds its parameters.
type hostFn func(in *instance, s []uint64) status

type hostFunc struct {
	name   string
	params []api.ValueType
	fn     hostFn
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func i32s(n int) []api.ValueType {
	p := make([]api.ValueType, n)
	for i := range p {
		p[i] = i32
	}
	return p
}

func u32(s []uint64, i int) uint32 { return uint32(s[i]) }

// hostFuncs lists what this host provides. Every result is one i32 status.
var hostFuncs = []hostFunc{
	// Logging and time.
	{"proxy_log", i32s(3), hostLog},
	{"proxy_get_log_level", i32s(1), hostGetLogLevel},
	{"proxy_get_current_time_nanoseconds", i32s(1), hostGetTime},
	{"proxy_set_tick_period_milliseconds", i32s(1), hostSetTickPeriod},

	// Buffers and configuration.
	{"proxy_get_buffer_bytes", i32s(5), hostGetBufferBytes},
	{"proxy_set_buffer_bytes", i32s(5), hostSetBufferBytes},
	{"proxy_get_buffer_status", i32s(3), hostGetBufferStatus},
	{"proxy_get_configuration", i32s(2), hostGetConfiguration}, // ABI 0.1.0, still imported by old SDKs

	// Header maps.
	{"proxy_get_header_map_pairs", i32s(3), hostGetHeaderMapPairs},
	{"proxy_set_header_map_pairs", i32s(3), hostSetHeaderMapPairs},
	{"proxy_get_header_map_size", i32s(2), hostGetHeaderMapSize},
	{"proxy_get_header_map_value", i32s(5), hostGetHeaderMapValue},
	{"proxy_add_header_map_value", i32s(5), hostAddHeaderMapValue},
	{"proxy_replace_header_map_value", i32s(5), hostReplaceHeaderMapValue},
	{"proxy_remove_header_map_value", i32s(3), hostRemoveHeaderMapValue},

	// Properties.
	{"proxy_get_property", i32s(4), hostGetProperty},
	{"proxy_set_property", i32s(4), hostSetProperty},

	// Stream control.
	{"proxy_send_local_response", i32s(8), hostSendLocalResponse},
	{"proxy_continue_stream", i32s(1), hostContinueStream},
	{"proxy_close_stream", i32s(1), hostCloseStream},
	{"proxy_continue_request", nil, hostResume},  // ABI 0.1.0
	{"proxy_continue_response", nil, hostResume}, // ABI 0.1.0
	{"proxy_clear_route_cache", nil, hostOK},     // the route is chosen before filters run
	{"proxy_done", nil, hostOK},
	{"proxy_set_effective_context", i32s(1), hostSetEffectiveContext},

	// Metrics and shared data.
	{"proxy_define_metric", i32s(4), hostDefineMetric},
	{"proxy_increment_metric", []api.ValueType{i32, i64}, hostIncrementMetric},
	{"proxy_record_metric", []api.ValueType{i32, i64}, hostRecordMetric},
	{"proxy_get_metric", i32s(2), hostGetMetric},
	{"proxy_get_shared_data", i32s(5), hostGetSharedData},
	{"proxy_set_shared_data", i32s(5), hostSetSharedData},

	// Shared queues (queue.go).
	{"proxy_register_shared_queue", i32s(3), hostRegisterSharedQueue},
	{"proxy_resolve_shared_queue", i32s(5), hostResolveSharedQueue},
	{"proxy_enqueue_shared_queue", i32s(3), hostEnqueueSharedQueue},
	{"proxy_dequeue_shared_queue", i32s(3), hostDequeueSharedQueue},

	// HTTP callouts to Weir services (callout.go).
	{"proxy_http_call", i32s(10), hostHTTPCall},
	{"proxy_dispatch_http_call", i32s(10), hostHTTPCall}, // ABI 0.1.0 name

	// Not implemented: answered with the status the SDKs handle as a
	// plain failure rather than a panic.
	{"proxy_grpc_call", i32s(12), hostStatus(statusParseFailure)},
	{"proxy_grpc_stream", i32s(9), hostStatus(statusParseFailure)},
	{"proxy_grpc_send", i32s(4), hostStatus(statusNotFound)},
	{"proxy_grpc_cancel", i32s(1), hostStatus(statusNotFound)},
	{"proxy_grpc_close", i32s(1), hostStatus(statusNotFound)},
	{"proxy_get_status", i32s(3), hostStatus(statusNotFound)},
	{"proxy_call_foreign_function", i32s(6), hostStatus(statusNotFound)},
}

var hostFuncByName = func() map[string]*hostFunc {
	m := make(map[string]*hostFunc, len(hostFuncs))
	for i := range hostFuncs {
		m[hostFuncs[i].name] = &hostFuncs[i]
	}
	return m
}()

var resultI32 = []api.ValueType{api.ValueTypeI32}

// instantiateHost adds the "env" module to rt.
func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("env")
	for i := range hostFuncs {
		h := &hostFuncs[i]
		b.NewFunctionBuilder().
			WithGoModuleFunction(wrap(h.fn), h.params, resultI32).
			WithName(h.name).
			Export(h.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// wrap adapts fn to wazero's stack-based host function, which is called
// without reflection or allocation.
func wrap(fn hostFn) api.GoModuleFunc {
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		in := instanceOf(ctx)
		var st status
		switch {
		case in == nil:
			st = statusInternalFailure
		case in.inAlloc:
			// Called from inside the guest's allocator while the host is
			// handing it a buffer: refuse rather than re-enter.
			st = statusInternalFailure
		default:
			st = fn(in, stack)
		}
		stack[0] = uint64(st)
	}
}

func hostOK(*instance, []uint64) status { return statusOK }

func hostStatus(st status) hostFn {
	return func(*instance, []uint64) status { return st }
}

// --- logging and time

func hostLog(in *instance, s []uint64) status {
	level := u32(s, 0)
	if level < in.f.s.logLevel {
		return statusOK // below log_level: dropped before anything is read
	}
	var lv slog.Level
	switch level {
	case logTrace, logDebug:
		lv = slog.LevelDebug
	case logInfo:
		lv = slog.LevelInfo
	case logWarn:
		lv = slog.LevelWarn
	case logError, logCritical:
		lv = slog.LevelError
	default:
		return statusBadArgument
	}
	msg, ok := in.read(u32(s, 1), u32(s, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	if !in.f.log.Enabled(context.Background(), lv) {
		return statusOK
	}
	if in.c != nil {
		in.f.log.Log(context.Background(), lv, string(msg), "request_id", string(in.c.RequestID()))
	} else {
		in.f.log.Log(context.Background(), lv, string(msg))
	}
	return statusOK
}

func hostGetLogLevel(in *instance, s []uint64) status {
	lv := uint32(logError)
	switch ctx, l := context.Background(), in.f.log; {
	case l.Enabled(ctx, slog.LevelDebug):
		lv = logDebug
	case l.Enabled(ctx, slog.LevelInfo):
		lv = logInfo
	case l.Enabled(ctx, slog.LevelWarn):
		lv = logWarn
	}
	if !in.mem.WriteUint32Le(u32(s, 0), max(lv, in.f.s.logLevel)) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

func hostGetTime(in *instance, s []uint64) status {
	if !in.mem.WriteUint64Le(u32(s, 0), uint64(time.Now().UnixNano())) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// hostSetTickPeriod sets the instance's tick period (tick.go); 0 stops
// its ticks.
func hostSetTickPeriod(in *instance, s []uint64) status {
	in.setTickPeriod(time.Duration(u32(s, 0)) * time.Millisecond)
	return statusOK
}

// --- buffers

// buffer returns buffer t, for writing when write is set.
func (in *instance) buffer(t uint32, write bool) ([]byte, status) {
	switch t {
	case bufferRequestBody:
		if in.c == nil || (write && in.phase != phaseRequest) {
			return nil, statusNotFound
		}
		if !in.c.BodyBuffered() {
			return nil, statusNotFound // streamed by the proxy (too large to hold): never in memory
		}
		return in.c.RequestBody(), statusOK
	case bufferResponseBody:
		if in.c == nil || in.phase < phaseResponse || (write && in.phase != phaseResponse) {
			return nil, statusNotFound
		}
		resp := in.c.Response()
		if resp.IsBodyStream() {
			return nil, statusNotFound
		}
		return resp.Body(), statusOK
	case bufferVMConfiguration:
		if write {
			return nil, statusBadArgument
		}
		return in.f.s.vmConfig, statusOK
	case bufferPluginConfiguration:
		if write {
			return nil, statusBadArgument
		}
		return in.f.s.guestConfig, statusOK
	case bufferHTTPCallResponse:
		if in.rs == nil || in.rs.answer == nil || write {
			return nil, statusNotFound
		}
		if in.rs.answer.err != nil {
			return nil, statusOK
		}
		return in.rs.answer.resp.Body(), statusOK
	case bufferDownstreamData, bufferUpstreamData, bufferGRPCMessage, bufferForeignArguments:
		return nil, statusNotFound
	}
	return nil, statusBadArgument
}

func hostGetBufferBytes(in *instance, s []uint64) status {
	b, st := in.buffer(u32(s, 0), false)
	if st != statusOK {
		return st
	}
	start, max := uint64(u32(s, 1)), uint64(u32(s, 2))
	if start > uint64(len(b)) {
		return statusBadArgument
	}
	end := min(start+max, uint64(len(b)))
	return in.copyOut(b[start:end], u32(s, 3), u32(s, 4))
}

func hostSetBufferBytes(in *instance, s []uint64) status {
	t := u32(s, 0)
	data, ok := in.read(u32(s, 3), u32(s, 4))
	if !ok {
		return statusInvalidMemoryAccess
	}
	cur, st := in.buffer(t, true)
	if st != statusOK {
		return st
	}
	// Replace size bytes at start with data: start=0,size=0 prepends,
	// start past the end appends (ABI 0.2.1, proxy_set_buffer_bytes).
	start := min(uint64(u32(s, 1)), uint64(len(cur)))
	end := min(start+uint64(u32(s, 2)), uint64(len(cur)))
	nb := append(in.body[:0], cur[:start]...)
	nb = append(nb, data...)
	nb = append(nb, cur[end:]...)
	in.body = nb
	if t == bufferRequestBody {
		in.c.SetRequestBody(nb)
	} else {
		in.c.Response().SetBody(nb)
	}
	return statusOK
}

func hostGetBufferStatus(in *instance, s []uint64) status {
	b, st := in.buffer(u32(s, 0), false)
	if st != statusOK {
		return st
	}
	if !in.mem.WriteUint32Le(u32(s, 1), uint32(len(b))) || !in.mem.WriteUint32Le(u32(s, 2), 0) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

func hostGetConfiguration(in *instance, s []uint64) status {
	return in.copyOut(in.f.s.guestConfig, u32(s, 0), u32(s, 1))
}

// --- header maps

func hostGetHeaderMapPairs(in *instance, s []uint64) status {
	kvs, st := in.mapPairs(u32(s, 0))
	if st != statusOK {
		return st
	}
	in.buf = appendPairs(in.buf[:0], kvs)
	return in.copyOut(in.buf, u32(s, 1), u32(s, 2))
}

func hostGetHeaderMapSize(in *instance, s []uint64) status {
	kvs, st := in.mapPairs(u32(s, 0))
	if st != statusOK {
		return st
	}
	if !in.mem.WriteUint32Le(u32(s, 1), uint32(pairsSize(kvs))) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

func hostSetHeaderMapPairs(in *instance, s []uint64) status {
	data, ok := in.read(u32(s, 1), u32(s, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	p, err := parsePairs(data)
	if err != nil {
		return statusBadArgument
	}
	return in.setPairs(u32(s, 0), p)
}

func hostGetHeaderMapValue(in *instance, s []uint64) status {
	key, ok := in.read(u32(s, 1), u32(s, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	v, st := in.mapValue(u32(s, 0), key)
	if st != statusOK {
		return st
	}
	return in.copyOut(v, u32(s, 3), u32(s, 4))
}

func hostAddHeaderMapValue(in *instance, s []uint64) status {
	return setHeaderMapValue(in, s, true)
}

func hostReplaceHeaderMapValue(in *instance, s []uint64) status {
	return setHeaderMapValue(in, s, false)
}

func setHeaderMapValue(in *instance, s []uint64, add bool) status {
	key, ok1 := in.read(u32(s, 1), u32(s, 2))
	value, ok2 := in.read(u32(s, 3), u32(s, 4))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	return in.setHeader(u32(s, 0), key, value, add)
}

func hostRemoveHeaderMapValue(in *instance, s []uint64) status {
	key, ok := in.read(u32(s, 1), u32(s, 2))
	if !ok {
		return statusInvalidMemoryAccess
	}
	return in.removeHeader(u32(s, 0), key)
}

// --- properties

func hostGetProperty(in *instance, s []uint64) status {
	path, ok := in.read(u32(s, 0), u32(s, 1))
	if !ok {
		return statusInvalidMemoryAccess
	}
	v, st := in.property(path)
	if st != statusOK {
		return st
	}
	return in.copyOut(v, u32(s, 2), u32(s, 3))
}

func hostSetProperty(in *instance, s []uint64) status {
	path, ok1 := in.read(u32(s, 0), u32(s, 1))
	value, ok2 := in.read(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	return in.setProperty(path, value)
}

// --- stream control

// hostSendLocalResponse answers the request with the guest's status, body
// and headers instead of forwarding it (request phase), or replaces the
// upstream's response (response phase).
func hostSendLocalResponse(in *instance, s []uint64) status {
	code := u32(s, 0)
	_, okD := in.read(u32(s, 1), u32(s, 2)) // status_code_details: only checked
	body, okB := in.read(u32(s, 3), u32(s, 4))
	hdrs, okH := in.read(u32(s, 5), u32(s, 6))
	if !okD || !okB || !okH {
		return statusInvalidMemoryAccess
	}
	if in.c == nil || (in.phase != phaseRequest && in.phase != phaseResponse) {
		return statusBadArgument
	}
	if code < 100 || code > 599 {
		return statusBadArgument
	}
	p, err := parsePairs(hdrs)
	if err != nil {
		return statusBadArgument
	}
	check := p
	for {
		k, v, ok := check.next()
		if !ok {
			break
		}
		if (len(k) == 0 || k[0] != ':') && (!httpsyntax.IsTokenBytes(k) || !httpsyntax.ValidFieldValueBytes(v)) {
			return statusBadArgument
		}
	}
	resp := in.c.Response()
	resp.Reset()
	resp.SetStatusCode(int(code))
	resp.SetBody(body)
	for {
		k, v, ok := p.next()
		if !ok {
			break
		}
		if k[0] == ':' || isFraming(k) {
			continue
		}
		resp.Header.AddBytesKV(k, v)
	}
	if in.phase == phaseRequest {
		in.rs.local = true
	}
	in.resumeCurrent()
	return statusOK
}

// hostContinueStream resumes a request paused by its guest (settle).
func hostContinueStream(in *instance, s []uint64) status {
	if t := u32(s, 0); t > 3 {
		return statusBadArgument
	}
	return hostResume(in, s)
}

func hostResume(in *instance, _ []uint64) status {
	if in.rs != nil {
		in.resumeCurrent()
	}
	return statusOK
}

// hostCloseStream ends the request or response: a request closed in the
// request phase is answered 403, a response closed in the response phase
// is replaced by a 502, both as gateway JSON errors.
func hostCloseStream(in *instance, s []uint64) status {
	t := u32(s, 0)
	if t != streamHTTPRequest && t != streamHTTPResponse {
		return statusBadArgument
	}
	switch {
	case in.c == nil:
		return statusBadArgument
	case in.phase == phaseRequest:
		in.c.Fail(403, "request closed by the wasm filter")
		in.rs.local = true
	case in.phase == phaseResponse:
		in.c.Fail(502, "response closed by the wasm filter")
	default:
		return statusBadArgument
	}
	in.resumeCurrent()
	return statusOK
}

// hostSetEffectiveContext switches the context later host calls act on:
// the root context, the request the callback runs for, or a request of
// this instance that waits paused (which a tick may then resume).
func hostSetEffectiveContext(in *instance, s []uint64) status {
	id := u32(s, 0)
	switch {
	case id == rootContextID:
		return statusOK
	case in.own != nil && id == in.own.id:
		in.rs, in.c, in.phase = in.own, in.own.c, in.own.ph
		return statusOK
	}
	if rs := in.paused[id]; rs != nil {
		in.rs, in.c, in.phase = rs, rs.c, rs.ph
		return statusOK
	}
	return statusBadArgument
}

// --- metrics and shared data

func hostDefineMetric(in *instance, s []uint64) status {
	name, ok := in.read(u32(s, 1), u32(s, 2))
	if !ok || !in.returnSlot(u32(s, 3)) {
		return statusInvalidMemoryAccess
	}
	id, st := in.f.guestMetrics.define(u32(s, 0), name)
	if st != statusOK {
		return st
	}
	in.mem.WriteUint32Le(u32(s, 3), id)
	return statusOK
}

func hostIncrementMetric(in *instance, s []uint64) status {
	return in.f.guestMetrics.increment(u32(s, 0), int64(s[1]))
}

func hostRecordMetric(in *instance, s []uint64) status {
	return in.f.guestMetrics.record(u32(s, 0), s[1])
}

func hostGetMetric(in *instance, s []uint64) status {
	v, st := in.f.guestMetrics.value(u32(s, 0))
	if st != statusOK {
		return st
	}
	if !in.mem.WriteUint64Le(u32(s, 1), v) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

func hostGetSharedData(in *instance, s []uint64) status {
	key, ok := in.read(u32(s, 0), u32(s, 1))
	if !ok || !in.returnSlot(u32(s, 4)) {
		return statusInvalidMemoryAccess
	}
	// Copy the value out under the store's lock, then hand it over
	// without the lock held: the allocator is guest code.
	v, cas, st := in.f.shared.get(in.buf[:0], key)
	in.buf = v
	if st != statusOK {
		return st
	}
	if st := in.copyOut(v, u32(s, 2), u32(s, 3)); st != statusOK {
		return st
	}
	in.mem.WriteUint32Le(u32(s, 4), cas)
	return statusOK
}

func hostSetSharedData(in *instance, s []uint64) status {
	key, ok1 := in.read(u32(s, 0), u32(s, 1))
	value, ok2 := in.read(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		return statusInvalidMemoryAccess
	}
	return in.f.shared.set(key, value, u32(s, 4))
}
