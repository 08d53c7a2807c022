package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
	"github.com/weirgw/weir/sdk"
)

// phase is what an instance is running a callback for; it decides which
// header maps and buffers the host functions may touch.
type phase uint8

const (
	// phaseRoot: start-up callbacks, no request.
	phaseRoot phase = iota
	// phaseRequest: proxy_on_request_headers / _body.
	phaseRequest
	// phaseResponse: proxy_on_response_headers / _body.
	phaseResponse
	// phaseLog: proxy_on_done, proxy_on_log, proxy_on_delete.
	phaseLog
)

// instance is one instantiated guest module. A wasm module instance is
// single-threaded: it belongs to one slot, and only the goroutine holding
// the slot's lock may call into it or touch its per-call fields. Many
// requests keep HTTP contexts in the same instance at once (the guest
// tracks them by context ID), as in Envoy, where one VM per worker serves
// every stream of that worker.
//
// An instance is also the context.Context of every call into it: wazero
// hands that context to host functions, which is how they find the
// instance. Using the instance itself avoids allocating a context per
// call. A runaway guest is stopped by its fuel (meter.go), not through the
// context.
type instance struct {
	f    *filter
	slot *slot // the pool slot holding it (a queue's receiver)
	mod  api.Module
	mem  api.Memory

	// The guest's callbacks; nil when the module does not export one.
	onContextCreate    api.Function
	onRequestHeaders   api.Function
	onRequestBody      api.Function
	onResponseHeaders  api.Function
	onResponseBody     api.Function
	onDone             api.Function
	onLog              api.Function
	onDelete           api.Function
	onHTTPCallResponse api.Function
	onTick             api.Function
	onQueueReady       api.Function
	malloc             api.Function

	// stack holds the parameters and results of a call into the guest;
	// wazero requires room for max(params, results).
	stack      [8]uint64
	allocStack [1]uint64

	// Limits (meter.go): fuel is the module's fuel global, set before
	// each callback; the backstop timer sets stop when a callback runs
	// past its wall-clock backstop. mu orders the timer's write with the
	// calls': armed while a callback runs, fired once the timer emptied
	// the fuel.
	// The timer is not reset per callback (two timer-heap operations
	// per call, most of a trivial callback's cost): a callback records
	// its deadline, and a timer already pending for an earlier or equal
	// time stays; when it fires early for the callback running then, it
	// re-arms itself for the rest.
	fuel     api.MutableGlobal
	stop     api.MutableGlobal
	timer    *time.Timer
	mu       sync.Mutex
	armed    bool
	fired    bool
	timerOn  bool  // the timer is pending, for timerAt
	timerAt  int64 // monotonicNow when the pending timer fires
	deadline int64 // monotonicNow past which the running callback is stopped

	// spent: timed out, trapped or closed. It is never called again; the
	// slot drops it.
	spent bool
	// nextID numbers HTTP contexts; 1 is the root context.
	nextID uint32
	// nextToken numbers HTTP calls (proxy_http_call's token).
	nextToken uint32
	// rootPending counts the HTTP calls the root context has in flight;
	// rootCalls carries the answer being delivered to it (its c is nil).
	rootPending int
	rootCalls   reqState
	// Ticks (tick.go): the period the guest asked for (0: none) and when
	// proxy_on_tick last ran.
	tickPeriod time.Duration
	lastTick   time.Time
	// paused are the requests with a context in this instance that wait
	// in settle; a tick or another request's callback may resume them
	// (proxy_set_effective_context, then proxy_continue_stream).
	paused map[uint32]*reqState
	// own is the request the current callback runs for; rs differs from
	// it after the guest switched to another context.
	own *reqState

	// Per call, cleared by end. rs and c are nil in root callbacks.
	rs      *reqState
	c       *sdk.Ctx
	phase   phase
	inAlloc bool  // inside the guest's allocator: host functions refuse to run
	fault   error // set by a host function when the instance cannot go on

	// Scratch buffers reused across calls (never shared with the guest
	// beyond a call).
	buf     []byte // what copyOut hands the guest
	body    []byte // a body being rebuilt by proxy_set_buffer_bytes
	kvs     []kv
	pseudo  [3][]byte
	names   []byte // setPairs: the names to delete, back to back
	ends    []int  // setPairs: where each name ends in names
	pathBuf []byte // setPath: the decoded path

	stdout, stderr *logWriter
}

var _ context.Context = (*instance)(nil)

// Deadline implements context.Context: the limits are the fuel and the
// backstop timer, not advertised.
func (in *instance) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context: never done.
func (in *instance) Done() <-chan struct{} { return nil }

// Err implements context.Context.
func (in *instance) Err() error { return nil }

type instanceKey struct{}

// Value implements context.Context; host functions find the instance by
// a type assertion on the context, this is the fallback should wazero
// ever wrap it.
func (in *instance) Value(key any) any {
	if key == (instanceKey{}) {
		return in
	}
	return nil
}

func instanceOf(ctx context.Context) *instance {
	if in, ok := ctx.(*instance); ok {
		return in
	}
	in, _ := ctx.Value(instanceKey{}).(*instance)
	return in
}

// newInstance instantiates the compiled module and runs its start-up
// callbacks: _initialize (or _start), proxy_on_context_create for the root
// context, proxy_on_vm_start and proxy_on_configure with the plugin config.
func (f *filter) newInstance(s *slot) (*instance, error) {
	in := &instance{f: f, slot: s, nextID: rootContextID}
	in.timer = time.AfterFunc(time.Hour, in.backstop)
	in.timer.Stop()
	in.stdout = &logWriter{log: f.log, level: slog.LevelInfo, stream: "stdout"}
	in.stderr = &logWriter{log: f.log, level: slog.LevelError, stream: "stderr"}
	// No filesystem, environment or arguments. Real clocks and
	// randomness: wazero's defaults are deterministic fakes, which would
	// give every instance the same "random" numbers (and the same map
	// hash seeds inside a Go guest).
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(in.stdout).
		WithStderr(in.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	mod, err := f.rt.InstantiateModule(in, f.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiating the module: %s", firstLine(err))
	}
	in.mod = mod
	in.mem = mod.Memory()
	if in.mem == nil {
		mod.Close(context.Background())
		return nil, errors.New("the module has no memory")
	}
	fuel, ok := mod.ExportedGlobal(fuelExport).(api.MutableGlobal)
	stop, ok2 := mod.ExportedGlobal(stopExport).(api.MutableGlobal)
	if !ok || !ok2 {
		mod.Close(context.Background())
		return nil, errors.New("the module has no fuel global (it was not metered)")
	}
	in.fuel, in.stop = fuel, stop
	in.onContextCreate = mod.ExportedFunction("proxy_on_context_create")
	in.onRequestHeaders = mod.ExportedFunction("proxy_on_request_headers")
	in.onRequestBody = mod.ExportedFunction("proxy_on_request_body")
	in.onResponseHeaders = mod.ExportedFunction("proxy_on_response_headers")
	in.onResponseBody = mod.ExportedFunction("proxy_on_response_body")
	in.onDone = mod.ExportedFunction("proxy_on_done")
	in.onLog = mod.ExportedFunction("proxy_on_log")
	in.onDelete = mod.ExportedFunction("proxy_on_delete")
	in.onHTTPCallResponse = mod.ExportedFunction("proxy_on_http_call_response")
	in.onTick = mod.ExportedFunction("proxy_on_tick")
	in.onQueueReady = mod.ExportedFunction("proxy_on_queue_ready")
	if in.malloc = mod.ExportedFunction("proxy_on_memory_allocate"); in.malloc == nil {
		in.malloc = mod.ExportedFunction("malloc")
	}
	if err := in.start(); err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

// start runs the start-up callbacks under the init timeout.
func (in *instance) start() error {
	s := in.f.s
	in.begin(nil, nil, phaseRoot)
	defer in.end()
	// Per the ABI: _initialize (then main, if exported) for reactors,
	// otherwise _start.
	if fn := in.mod.ExportedFunction("_initialize"); fn != nil {
		if _, err := in.call(fn, "_initialize", s.initTimeout, 0, 0, 0); err != nil {
			return err
		}
		if fn := in.mod.ExportedFunction("main"); fn != nil && len(fn.Definition().ParamTypes()) == 2 {
			if _, err := in.call(fn, "main", s.initTimeout, 0, 0, 0); err != nil {
				return err
			}
		}
	} else if fn := in.mod.ExportedFunction("_start"); fn != nil {
		if _, err := in.call(fn, "_start", s.initTimeout, 0, 0, 0); err != nil {
			var ee *sys.ExitError
			if errors.As(err, &ee) {
				// A command module: its _start runs main and exits.
				return fmt.Errorf("the module exited from _start (exit code %d); build it as a reactor (Go: -buildmode=c-shared, Rust: crate-type cdylib)", ee.ExitCode())
			}
			return err
		}
	}
	if _, err := in.call(in.onContextCreate, "proxy_on_context_create", s.initTimeout, rootContextID, 0, 0); err != nil {
		return err
	}
	if fn := in.mod.ExportedFunction("proxy_on_vm_start"); fn != nil {
		ok, err := in.call(fn, "proxy_on_vm_start", s.initTimeout, rootContextID, uint64(len(s.vmConfig)), 0)
		if err != nil {
			return err
		}
		if uint32(ok) == 0 {
			return errors.New("the guest's proxy_on_vm_start returned false (see its log lines)")
		}
	}
	if fn := in.mod.ExportedFunction("proxy_on_configure"); fn != nil {
		ok, err := in.call(fn, "proxy_on_configure", s.initTimeout, rootContextID, uint64(len(s.guestConfig)), 0)
		if err != nil {
			return err
		}
		if uint32(ok) == 0 {
			return errors.New("the guest refused its configuration: proxy_on_configure returned false (see its log lines)")
		}
	}
	return nil
}

// begin prepares a call for request state rs (nil for root callbacks).
func (in *instance) begin(rs *reqState, c *sdk.Ctx, p phase) {
	in.rs, in.c, in.phase, in.own = rs, c, p, rs
	if rs != nil {
		rs.c, rs.ph = c, p
	}
}

// maxScratch is the largest scratch buffer an instance keeps between
// calls; a guest that once rewrote a 10 MB body should not pin 10 MB.
const maxScratch = 64 << 10

// end clears what begin set, so that nothing of a request stays in a
// shared instance.
func (in *instance) end() {
	in.rs, in.c, in.phase, in.own = nil, nil, phaseRoot, nil
	in.fault = nil
	if cap(in.buf) > maxScratch {
		in.buf = nil
	}
	if cap(in.body) > maxScratch {
		in.body = nil
	}
}

// newContextID returns an HTTP context ID unused in this instance.
func (in *instance) newContextID() uint32 {
	in.nextID++
	if in.nextID <= rootContextID { // wrapped after 4 billion requests
		in.nextID = rootContextID + 1
	}
	return in.nextID
}

// call runs fn with up to three parameters under timeout and returns its
// first result. Any failure (a trap, the timeout, a host function's fault)
// marks the instance spent; the error names the callback.
func (in *instance) call(fn api.Function, name string, timeout time.Duration, a, b, c uint64) (uint64, error) {
	in.stack[0], in.stack[1], in.stack[2] = a, b, c
	return in.invoke(fn, name, timeout)
}

// call5 is call for a callback of five parameters.
func (in *instance) call5(fn api.Function, name string, timeout time.Duration, a, b, c, d, e uint64) (uint64, error) {
	in.stack[0], in.stack[1], in.stack[2], in.stack[3], in.stack[4] = a, b, c, d, e
	return in.invoke(fn, name, timeout)
}

// invoke runs fn with the parameters in in.stack, with the fuel of
// timeout and its wall-clock backstop.
func (in *instance) invoke(fn api.Function, name string, timeout time.Duration) (uint64, error) {
	if in.spent {
		return 0, errSpent
	}
	back := backstopFor(timeout)
	now := monotonicNow()
	in.mu.Lock()
	in.armed, in.fired = true, false
	in.deadline = now + int64(back)
	in.fuel.Set(fuelFor(timeout))
	in.stop.Set(0)
	if !in.timerOn || in.timerAt > in.deadline {
		in.timerOn, in.timerAt = true, in.deadline
		in.timer.Reset(back)
	}
	in.mu.Unlock()
	err := fn.CallWithStack(in, in.stack[:])
	in.mu.Lock()
	in.armed = false
	fired := in.fired
	in.mu.Unlock()
	if err == nil && in.fault != nil {
		err = in.fault
	}
	if err == nil {
		// A callback that returned just as the backstop fired is done:
		// the next one gets new fuel.
		return in.stack[0], nil
	}
	in.spent = true
	if fired || int64(in.fuel.Get()) <= 0 {
		in.f.timeouts.Inc()
		return 0, &callError{name: name, timeout: timeout, wall: fired}
	}
	return 0, &callError{name: name, err: err}
}

// fuelPerMicrosecond is the fuel a callback gets per microsecond of its
// timeout: about what a tight guest loop (the cheapest way to spend fuel,
// about 3 iterations per ns) burns in that time on a current x86 core, so
// that an endless loop stops after about the timeout's worth of CPU,
// however long it waited for one. A variable for tests.
var fuelPerMicrosecond uint64 = 3000

// fuelFor is the fuel of a callback limited to timeout.
func fuelFor(timeout time.Duration) uint64 {
	return uint64(timeout.Microseconds()) * fuelPerMicrosecond
}

// backstopFor is the wall-clock limit of a callback limited to timeout:
// generous, as it also counts time spent waiting for a CPU, which a
// saturated gateway makes long; it stops a callback whose work is slow
// without spending fuel (a loop around an expensive host call).
func backstopFor(timeout time.Duration) time.Duration {
	return max(10*timeout, minBackstop)
}

// minBackstop is the shortest wall-clock backstop. A variable for tests.
var minBackstop = time.Second

// backstop runs on the timer's goroutine: it sets the stop flag of the
// callback running past its backstop, which stops at its next loop or
// call.
// The timer may have been set for an earlier callback: if the running
// one's deadline is later, it re-arms for the rest; with no callback
// running it stays off until the next one starts it.
func (in *instance) backstop() {
	in.mu.Lock()
	in.timerOn = false
	if in.armed {
		if left := in.deadline - monotonicNow(); left > 0 {
			in.timerOn, in.timerAt = true, in.deadline
			in.timer.Reset(time.Duration(left))
		} else {
			in.fired = true
			in.stop.Set(1)
		}
	}
	in.mu.Unlock()
}

// epoch anchors monotonicNow.
var epoch = time.Now()

// monotonicNow is the monotonic clock in nanoseconds (one clock read).
func monotonicNow() int64 { return int64(time.Since(epoch)) }

var errSpent = errors.New("wasm: the module instance holding this request's context was discarded after a callback failed in it")

// callError is a failed call into the guest.
type callError struct {
	name    string
	timeout time.Duration // non-zero when the fuel or the backstop stopped it
	wall    bool          // the backstop stopped it
	err     error
}

func (e *callError) Error() string {
	if e.wall {
		return fmt.Sprintf("wasm: %s did not finish within its wall-clock backstop (%s)", e.name, backstopFor(e.timeout))
	}
	if e.timeout > 0 {
		return fmt.Sprintf("wasm: %s did not finish within the %s timeout", e.name, e.timeout)
	}
	return fmt.Sprintf("wasm: %s: %s", e.name, firstLine(e.err))
}

func (e *callError) Unwrap() error { return e.err }

// firstLine drops wazero's wasm stack trace from an error message.
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// close releases the module. The slot no longer refers to in.
func (in *instance) close() {
	in.spent = true
	in.timer.Stop()
	if in.mod != nil {
		_ = in.mod.Close(context.Background())
	}
}

// alloc reserves size bytes in guest memory through the guest's
// allocator. It runs guest code: any view of guest memory taken before it
// may be stale afterwards (memory can grow), and host functions called
// from inside the allocator are refused so that they cannot reuse the
// scratch buffers being copied out.
func (in *instance) alloc(size uint32) (uint32, status) {
	in.inAlloc = true
	in.allocStack[0] = uint64(size)
	err := in.malloc.CallWithStack(in, in.allocStack[:])
	in.inAlloc = false
	if err != nil {
		if in.fault == nil {
			in.fault = fmt.Errorf("the guest's allocator failed: %s", firstLine(err))
		}
		return 0, statusInternalFailure
	}
	p := uint32(in.allocStack[0])
	if p == 0 {
		// "Returning 0 indicates failure."
		return 0, statusInvalidMemoryAccess
	}
	return p, statusOK
}

// read returns a view of size bytes of guest memory at ptr, bounds
// checked. The view is only valid until the guest runs again.
func (in *instance) read(ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return in.mem.Read(ptr, size)
}

// returnSlot reports whether a 4-byte return slot at ptr is writable.
func (in *instance) returnSlot(ptr uint32) bool {
	_, ok := in.mem.Read(ptr, 4)
	return ok
}

// copyOut hands data to the guest the way every ABI getter does: it
// allocates len(data) bytes with the guest's allocator, copies data there
// and writes the address and size into the guest's return slots. data
// must not alias guest memory.
func (in *instance) copyOut(data []byte, retPtr, retSize uint32) status {
	if !in.returnSlot(retPtr) || !in.returnSlot(retSize) {
		return statusInvalidMemoryAccess
	}
	var addr uint32
	if len(data) > 0 {
		if uint64(len(data)) > uint64(in.mem.Size()) {
			return statusInvalidMemoryAccess // cannot fit; do not ask the guest for it
		}
		var st status
		if addr, st = in.alloc(uint32(len(data))); st != statusOK {
			return st
		}
		if !in.mem.Write(addr, data) {
			return statusInvalidMemoryAccess
		}
	}
	if !in.mem.WriteUint32Le(retPtr, addr) || !in.mem.WriteUint32Le(retSize, uint32(len(data))) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}
