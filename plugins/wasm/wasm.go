// Package wasm is the wasm plugin: a host for Proxy-Wasm HTTP filters (ABI
// 0.2.1, https://github.com/proxy-wasm/spec) on the wazero runtime, so that
// filters written for Envoy with the Go, Rust or C++ SDKs run in Weir.
//
// The module is compiled once when the config loads. Requests are served
// by a fixed pool of module instances; each request creates an HTTP
// context in one of them and calls proxy_on_request_headers (OnRequest),
// proxy_on_response_headers (OnResponse) and proxy_on_done / _log /
// _delete (OnLog). The guest is sandboxed: no filesystem, environment or
// network, a memory cap, and a timeout on every callback. See README.md
// for the supported ABI and the limits.
package wasm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tetratelabs/wazero"
	"github.com/weirgw/weir/sdk"
)

func init() { sdk.Register(sdk.Factory{Name: "wasm", New: New}) }

// filter is one wasm plugin instance, shared by all requests of a
// snapshot. Everything it holds is either immutable after New or safe for
// concurrent use; per-request state lives in a reqState, per-call state in
// the instance being called.
type filter struct {
	s          *settings
	log        *slog.Logger
	rt         wazero.Runtime
	compiled   wazero.CompiledModule
	pool       *pool
	pluginName []byte

	// What the module exports, known from the compiled module.
	hasRequest, hasResponse, hasLog bool

	guestMetrics *guestMetrics
	shared       *sharedData
	// upstream finds the service an HTTP callout names (sdk.Build.Upstream).
	upstream func(string) sdk.Upstream

	errors    *metrics.Counter
	timeouts  *metrics.Counter
	pauseWarn atomic.Bool
	closeOnce sync.Once

	// Ticks (tick.go): the shortest period an instance asked for (ns),
	// whether Start ran, the ticker's start and its stop.
	tickEvery atomic.Int64
	started   atomic.Bool
	tickOnce  sync.Once
	stop      chan struct{}
}

var (
	_ sdk.ResponseFilter = (*filter)(nil)
	_ sdk.LogFilter      = (*filter)(nil)
	_ sdk.Starter        = (*filter)(nil)
	_ sdk.Closer         = (*filter)(nil)
)

// New validates the config, compiles the module, checks that it is a
// Proxy-Wasm 0.2.x guest, and starts one instance (which runs the guest's
// proxy_on_configure, so a configuration the guest refuses is a config
// error). It starts no background goroutine: the rest of the pool is
// made by Start, or on first use.
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	cfg.Module = b.ResolvePath(cfg.Module)
	s, err := validate(&cfg)
	if err != nil {
		return nil, err
	}
	label := b.Route
	if label == "" {
		label = "_global"
	}
	logger := b.Log
	if logger == nil {
		logger = slog.Default()
	}
	rt, compiled, err := newRuntime(s, compilationCache(b.WasmCacheDir, logger))
	if err != nil {
		return nil, err
	}
	exports := compiled.ExportedFunctions()
	f := &filter{
		s:            s,
		log:          logger.With("plugin", "wasm", "route", label, "module", s.name),
		rt:           rt,
		compiled:     compiled,
		pool:         newPool(s.poolSize),
		pluginName:   []byte(s.name),
		hasRequest:   exports["proxy_on_request_headers"] != nil || exports["proxy_on_request_body"] != nil,
		hasResponse:  exports["proxy_on_response_headers"] != nil || exports["proxy_on_response_body"] != nil,
		hasLog:       exports["proxy_on_done"] != nil || exports["proxy_on_log"] != nil || exports["proxy_on_delete"] != nil,
		guestMetrics: newGuestMetrics(label),
		shared:       sharedDataFor(s.absPath),
		upstream:     b.Upstream,
		stop:         make(chan struct{}),
		errors:       metrics.GetOrCreateCounter(fmt.Sprintf(`weir_wasm_errors_total{route=%q}`, label)),
		timeouts:     metrics.GetOrCreateCounter(fmt.Sprintf(`weir_wasm_timeouts_total{route=%q}`, label)),
	}
	in, err := f.newInstance(&f.pool.slots[0])
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the module: %w", err)
	}
	f.pool.slots[0].inst = in
	return f, nil
}

// Start creates the rest of the instance pool before traffic arrives.
func (f *filter) Start() error {
	if err := f.pool.fill(f); err != nil {
		return err
	}
	f.started.Store(true)
	f.startTicks()
	queues.kick()
	return nil
}

// Close closes the instances, the compiled module and the runtime. It is
// idempotent: closing the compiled module twice would release another
// filter's reference to the shared compilation cache.
func (f *filter) Close() error {
	var err error
	f.closeOnce.Do(func() {
		ctx := context.Background()
		close(f.stop)
		queues.drop(f)
		f.pool.close()
		_ = f.compiled.Close(ctx)
		err = f.rt.Close(ctx)
	})
	return err
}

// OnRequest creates the request's HTTP context in an instance and runs
// proxy_on_request_headers, then proxy_on_request_body when the guest
// exports it and the body is buffered. A local response from the guest
// stops the chain.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	if !f.hasRequest && !f.hasResponse && !f.hasLog {
		return sdk.Continue, nil // no HTTP callback: nothing to create a context for
	}
	s := f.pool.acquire()
	in, err := s.instance(f)
	if err != nil {
		s.release()
		f.errors.Inc()
		return sdk.Continue, fmt.Errorf("wasm: preparing a module instance: %w", err)
	}
	rs := acquireReqState()
	rs.slot, rs.inst = s, in
	rs.id = in.newContextID()
	in.begin(rs, c, phaseRequest)
	err = f.requestPhase(s, in, rs, c)
	in.end()
	s.release()
	if err != nil {
		f.errors.Inc()
		releaseReqState(rs)
		return sdk.Continue, err
	}
	c.SetValue(f, rs)
	if rs.local {
		return sdk.Stop, nil
	}
	return sdk.Continue, nil
}

// requestPhase runs the request callbacks in in, with s locked. A
// callback that pauses the request or calls out is settled before the
// next one runs.
func (f *filter) requestPhase(s *slot, in *instance, rs *reqState, c *sdk.Ctx) error {
	t := f.s.timeout
	if _, err := in.call(in.onContextCreate, "proxy_on_context_create", t, uint64(rs.id), rootContextID, 0); err != nil {
		return err
	}
	// The proxy buffered the body or chose to stream it (too large); a
	// streamed body never reaches the guest.
	buffered := c.BodyBuffered()
	body := len(c.RequestBody()) > 0
	if in.onRequestHeaders != nil {
		eos := uint64(0)
		if !body && buffered {
			eos = 1
		}
		r, err := in.call(in.onRequestHeaders, "proxy_on_request_headers", t, uint64(rs.id), in.headerCount(mapRequestHeaders), eos)
		if err != nil {
			return err
		}
		// Pause before a body the guest will see means "wait for the
		// body", which is already whole: the body callback decides.
		action := uint32(r)
		if body && in.onRequestBody != nil && rs.pending == 0 {
			action = actionContinue
		}
		if err := f.settle(s, in, rs, c, phaseRequest, action); err != nil {
			return err
		}
	}
	if body && !rs.local && in.onRequestBody != nil {
		// The whole body is in memory: one call with end_of_stream set.
		r, err := in.call(in.onRequestBody, "proxy_on_request_body", t, uint64(rs.id), uint64(len(c.RequestBody())), 1)
		if err != nil {
			return err
		}
		return f.settle(s, in, rs, c, phaseRequest, uint32(r))
	}
	return nil
}

// state returns the request's state if OnRequest ran for it and it is
// still held.
func (f *filter) state(c *sdk.Ctx) *reqState {
	rs, _ := c.Value(f).(*reqState)
	return rs
}

// OnResponse runs proxy_on_response_headers, then proxy_on_response_body
// when the guest exports it and the body is buffered. It also runs for a
// response the guest itself sent from the request phase, as in Envoy. If
// the instance holding the request's context was discarded since (another
// request's callback trapped or timed out in it), its context is
// re-created in the slot's new instance (proxy_on_context_create) and
// the response phase runs there: another request's fault does not fail
// this one (the guest's per-request state from the request phase is lost
// with the old instance).
func (f *filter) OnResponse(c *sdk.Ctx) error {
	rs := f.state(c)
	if rs == nil || !f.hasResponse {
		return nil
	}
	s := rs.slot
	s.mu.Lock()
	in := s.inst
	if in == nil || in != rs.inst {
		var err error
		if in, err = f.recreate(s, rs, c); err != nil {
			s.release()
			rs.inst = nil
			f.errors.Inc()
			return err
		}
	}
	in.begin(rs, c, phaseResponse)
	err := f.responsePhase(s, in, rs, c)
	in.end()
	s.release()
	if err != nil {
		rs.inst = nil
		f.errors.Inc()
	}
	return err
}

// recreate makes a new HTTP context for rs in s's instance (creating the
// instance if the slot has none) after the instance that held its
// context was discarded. s is locked.
func (f *filter) recreate(s *slot, rs *reqState, c *sdk.Ctx) (*instance, error) {
	in, err := s.instance(f)
	if err != nil {
		return nil, fmt.Errorf("wasm: preparing a module instance: %w", err)
	}
	rs.inst = in
	rs.id = in.newContextID()
	in.begin(rs, c, phaseResponse)
	_, err = in.call(in.onContextCreate, "proxy_on_context_create", f.s.timeout, uint64(rs.id), rootContextID, 0)
	in.end()
	if err != nil {
		return nil, err
	}
	return in, nil
}

// responsePhase runs the response callbacks in in, with s locked, as
// requestPhase does the request's.
func (f *filter) responsePhase(s *slot, in *instance, rs *reqState, c *sdk.Ctx) error {
	t := f.s.timeout
	resp := c.Response()
	buffered := !resp.IsBodyStream()
	body := buffered && len(resp.Body()) > 0
	if in.onResponseHeaders != nil {
		eos := uint64(0)
		if !body && buffered {
			eos = 1
		}
		r, err := in.call(in.onResponseHeaders, "proxy_on_response_headers", t, uint64(rs.id), in.headerCount(mapResponseHeaders), eos)
		if err != nil {
			return err
		}
		action := uint32(r)
		if body && in.onResponseBody != nil && rs.pending == 0 {
			action = actionContinue
		}
		if err := f.settle(s, in, rs, c, phaseResponse, action); err != nil {
			return err
		}
	}
	// Re-read: the guest may have replaced the response.
	if in.onResponseBody != nil && !resp.IsBodyStream() && len(resp.Body()) > 0 {
		r, err := in.call(in.onResponseBody, "proxy_on_response_body", t, uint64(rs.id), uint64(len(resp.Body())), 1)
		if err != nil {
			return err
		}
		return f.settle(s, in, rs, c, phaseResponse, uint32(r))
	}
	return nil
}

// OnLog ends the request's HTTP context: proxy_on_done, proxy_on_log and
// proxy_on_delete, in Envoy's order. Deferred finalisation (on_done
// returning false, then proxy_done) is not waited for. Errors are logged;
// the response is already final.
func (f *filter) OnLog(c *sdk.Ctx) {
	rs := f.state(c)
	if rs == nil {
		return
	}
	c.SetValue(f, (*reqState)(nil))
	defer releaseReqState(rs)
	if !f.hasLog || rs.inst == nil {
		return
	}
	s := rs.slot
	s.mu.Lock()
	in := s.inst
	if in != rs.inst {
		s.mu.Unlock()
		return // discarded with the context in it: nothing to clean up
	}
	in.begin(rs, c, phaseLog)
	err := f.logPhase(in, rs)
	in.end()
	s.release()
	if err != nil {
		f.errors.Inc()
		f.log.Error("wasm log phase failed", "request_id", string(c.RequestID()), "error", err)
	}
}

func (f *filter) logPhase(in *instance, rs *reqState) error {
	t := f.s.timeout
	id := uint64(rs.id)
	if in.onDone != nil {
		if _, err := in.call(in.onDone, "proxy_on_done", t, id, 0, 0); err != nil {
			return err
		}
	}
	if in.onLog != nil {
		if _, err := in.call(in.onLog, "proxy_on_log", t, id, 0, 0); err != nil {
			return err
		}
	}
	if in.onDelete != nil {
		if _, err := in.call(in.onDelete, "proxy_on_delete", t, id, 0, 0); err != nil {
			return err
		}
	}
	return nil
}
