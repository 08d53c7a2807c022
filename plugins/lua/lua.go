// Package lua is the lua plugin: it runs an operator's Lua script, with
// Kong-style phase functions (access, header_filter, body_filter, log) and
// a PDK under the global `weir`, in a sandboxed gopher-lua VM
// (https://github.com/yuin/gopher-lua, Lua 5.1).
//
// The script is parsed and compiled once, when the config loads; prepared
// VMs (states) are pooled, and a request borrows one for each phase call.
// Each call is bounded by a budget of instructions (derived from its
// timeout) and of memory, counted inside library calls too (deadline.go,
// strlib.go, concat.go). A Kong plugin folder runs through the kong PDK
// shim (kong.lua, kong.go). See README.md for the PDK and the sandbox's
// limits.
package lua

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/sdk"
	glua "github.com/yuin/gopher-lua"
)

func init() {
	sdk.Register(sdk.Factory{Name: "lua", New: New, Instance: instanceName, Group: group})
}

// maxPoolWait bounds how long a request waits for a pooled state when all
// are busy before it prepares a temporary one (see statePool.get).
const maxPoolWait = 50 * time.Millisecond

// filter is one lua plugin instance. It is shared by all requests of a
// snapshot; everything per request lives in a borrowed state.
type filter struct {
	s       *settings
	route   string
	routeLV glua.LValue // route pre-boxed for weir.ctx.route
	log     *slog.Logger
	pool    *statePool
	has     [nPhases]bool
	// priority orders the lua instances of one route (chain.go): a Kong
	// handler's PRIORITY, or a script's global PRIORITY; 0 without.
	priority int

	errors   [nPhases]*metrics.Counter
	timeouts *metrics.Counter
	// memory counts calls cut by memory_limit_mb.
	memory *metrics.Counter
	// bodySkipped counts responses body_filter did not see because the
	// proxy streamed their body (over 256 KiB or of unknown length).
	bodySkipped *metrics.Counter
	// confChanged counts calls that changed conf (their VM is retired);
	// the first one is logged.
	confChanged *metrics.Counter
	confWarned  atomic.Bool
}

// The proxy calls a filter's optional phases when it implements
// sdk.ResponseFilter / sdk.LogFilter, so New (and group, for several
// instances) returns the type matching the functions the scripts define
// and no phase is run for nothing.
type (
	respFilter    struct{ runner }
	logFilter     struct{ runner }
	respLogFilter struct{ runner }
)

// runner is a lua instance (*filter) or a group of them (*chain).
type runner interface {
	sdk.Filter
	sdk.Starter
	sdk.Closer
	onResponse(c *sdk.Ctx) error
	onLog(c *sdk.Ctx)
	hasPhase(p phase) bool
}

var (
	_ sdk.ResponseFilter = respFilter{}
	_ sdk.LogFilter      = logFilter{}
	_ sdk.ResponseFilter = respLogFilter{}
	_ sdk.LogFilter      = respLogFilter{}
	// log() only observes the request: the proxy runs it after the answer
	// is sent, on a copy of the Ctx (sdk.DeferredLogFilter), so a slow
	// log function costs the client nothing.
	_ sdk.DeferredLogFilter = logFilter{}
	_ sdk.DeferredLogFilter = respLogFilter{}
	_ sdk.WholeBodyFilter   = respFilter{}
	_ sdk.WholeBodyFilter   = respLogFilter{}
	_ sdk.Starter           = respFilter{}
	_ sdk.Closer            = respFilter{}
)

func (f respFilter) OnResponse(c *sdk.Ctx) error    { return f.onResponse(c) }
func (f logFilter) OnLog(c *sdk.Ctx)                { f.onLog(c) }
func (f respLogFilter) OnResponse(c *sdk.Ctx) error { return f.onResponse(c) }
func (f respLogFilter) OnLog(c *sdk.Ctx)            { f.onLog(c) }
func (logFilter) DeferLog()                         {}
func (respLogFilter) DeferLog()                     {}

// WholeResponseBody is sdk.WholeBodyFilter: with a body_filter, the
// proxy reads a chunked or until-close upstream body that ends within
// 256 KiB into memory for it.
func (f respFilter) WholeResponseBody() bool    { return f.hasPhase(phaseBodyFilter) }
func (f respLogFilter) WholeResponseBody() bool { return f.hasPhase(phaseBodyFilter) }

func (f *filter) hasPhase(p phase) bool { return f.has[p] }

// wrap returns p as the type that has the phases in has.
func wrap(p runner, has [nPhases]bool) sdk.Filter {
	resp := has[phaseHeaderFilter] || has[phaseBodyFilter]
	switch {
	case resp && has[phaseLog]:
		return respLogFilter{p}
	case resp:
		return respFilter{p}
	case has[phaseLog]:
		return logFilter{p}
	}
	return p
}

// New validates the config, compiles the script and prepares one state
// (which runs the script's top level, so an error there is a config error).
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	cfg.File = b.ResolvePath(cfg.File)
	cfg.KongPlugin = b.ResolvePath(cfg.KongPlugin)
	s, err := validate(&cfg)
	if err != nil {
		return nil, err
	}
	route := b.Route
	label := route
	if label == "" {
		label = "_global"
	}
	logger := b.Log
	if logger == nil {
		logger = slog.Default()
	}
	f := &filter{
		s:           s,
		route:       route,
		routeLV:     glua.LString(route),
		log:         logger.With("plugin", "lua", "route", label, "script", s.chunkName),
		timeouts:    metrics.GetOrCreateCounter(fmt.Sprintf(`weir_lua_timeouts_total{route=%q}`, label)),
		memory:      metrics.GetOrCreateCounter(fmt.Sprintf(`weir_lua_memory_limit_total{route=%q}`, label)),
		bodySkipped: metrics.GetOrCreateCounter(fmt.Sprintf(`weir_lua_body_filter_skipped_total{route=%q}`, label)),
		confChanged: metrics.GetOrCreateCounter(fmt.Sprintf(`weir_lua_conf_changed_total{route=%q}`, label)),
	}
	for p := phase(0); p < nPhases; p++ {
		f.errors[p] = metrics.GetOrCreateCounter(fmt.Sprintf(`weir_lua_errors_total{route=%q,phase=%q}`, label, p))
	}
	f.pool = newStatePool(s.poolSize, min(s.timeout, maxPoolWait), func() (*state, error) { return newState(f) })

	st, err := newState(f)
	if err != nil {
		return nil, err
	}
	for p := phase(0); p < nPhases; p++ {
		f.has[p] = st.fn[p] != nil
	}
	f.priority = st.priority
	if f.has == [nPhases]bool{} {
		st.close()
		return nil, errors.New("the script defines none of the phase functions access, header_filter, body_filter, log; define at least one as a global function")
	}
	f.pool.created.Add(1)
	f.pool.put(st)

	return wrap(f, f.has), nil
}

// Start prepares the rest of the pool before traffic arrives.
func (f *filter) Start() error { return f.pool.fill() }

// Close closes the pooled states.
func (f *filter) Close() error {
	f.pool.close()
	return nil
}

// OnRequest runs the script's access function, if any.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	if !f.has[phaseAccess] {
		return sdk.Continue, nil
	}
	st, err := f.borrow(phaseAccess)
	if err != nil {
		return sdk.Continue, err
	}
	st.begin(c, phaseAccess)
	err = f.call(st, nil, 0)
	exited := st.exited
	if e := st.finish(); err == nil && e != nil {
		f.errors[phaseAccess].Inc()
		err = e
	}
	f.pool.put(st)
	if err != nil {
		return sdk.Continue, err
	}
	if exited {
		return sdk.Stop, nil
	}
	return sdk.Continue, nil
}

// onResponse runs header_filter, then body_filter when the body is in
// memory: the proxy holds an upstream's body of up to 256 KiB, whatever
// its framing, for a route with a body_filter (WholeResponseBody).
func (f *filter) onResponse(c *sdk.Ctx) error {
	runHeader := f.has[phaseHeaderFilter]
	runBody := f.has[phaseBodyFilter]
	if runBody && c.Response().IsBodyStream() {
		// Still streamed after the proxy read what ends within 256 KiB
		// (WholeResponseBody): a longer body goes straight to the client,
		// and reading it here would hold it all. body_filter does not
		// run; the count tells the operator.
		f.bodySkipped.Inc()
		runBody = false
	}
	if !runHeader && !runBody {
		return nil
	}
	var st *state
	var err error
	if runHeader {
		if st, err = f.borrow(phaseHeaderFilter); err != nil {
			return err
		}
		st.begin(c, phaseHeaderFilter)
		err = f.call(st, nil, 0)
		if e := st.finish(); err == nil && e != nil {
			f.errors[phaseHeaderFilter].Inc()
			err = e
		}
		if err != nil || !runBody {
			f.pool.put(st)
			return err
		}
		if st.spent {
			// The deadline fired as header_filter returned: this state
			// cannot run another call.
			f.pool.put(st)
			st = nil
		}
	}
	if st == nil {
		if st, err = f.borrow(phaseBodyFilter); err != nil {
			return err
		}
	}
	defer f.pool.put(st)
	resp := c.Response()
	st.begin(c, phaseBodyFilter)
	in := bodyValue(resp.Body())
	err = f.call(st, in, 1)
	if err == nil {
		switch out := st.L.Get(-1).(type) {
		case *glua.LNilType:
		case glua.LString:
			// The body as it came (the argument itself, or a gsub that
			// matched nothing, which returns it) is not copied back: the
			// argument is a copy of the body. Comparing them is O(1)
			// when they are the same string.
			if out != in {
				resp.SetBodyString(string(out))
			}
		default:
			f.errors[phaseBodyFilter].Inc()
			err = fmt.Errorf("lua: body_filter must return a string (the new body) or nil (keep it), got a %s", out.Type())
		}
	}
	if e := st.finish(); err == nil && e != nil {
		f.errors[phaseBodyFilter].Inc()
		err = e
	}
	return err
}

// onLog runs the log function. Errors are logged (there is no response
// left to change).
func (f *filter) onLog(c *sdk.Ctx) {
	st, err := f.borrow(phaseLog)
	if err == nil {
		st.begin(c, phaseLog)
		err = f.call(st, nil, 0)
		if e := st.finish(); err == nil && e != nil {
			f.errors[phaseLog].Inc()
			err = e
		}
		f.pool.put(st)
	}
	if err != nil {
		f.log.Error("lua log phase failed", "request_id", string(c.RequestID()), "error", err)
	}
}

// confWritten retires a state whose call changed conf (conf.go): the
// change must not reach the later requests the state would serve.
func (f *filter) confWritten(st *state) {
	st.spent = true
	f.confChanged.Inc()
	if f.confWarned.CompareAndSwap(false, true) {
		f.log.Warn("lua: the script changed conf in a phase; its VM is replaced after each such call so that the change reaches no later request (costly: keep request data in locals or weir.ctx.shared / kong.ctx.plugin); counted in weir_lua_conf_changed_total", "phase", st.phase.String())
	}
}

// borrow takes a state from the pool.
func (f *filter) borrow(p phase) (*state, error) {
	st, err := f.pool.get()
	if err != nil {
		f.errors[p].Inc()
		return nil, fmt.Errorf("lua: %s: preparing a Lua state: %w", p, err)
	}
	return st, nil
}

// call runs the function of the state's current phase, with arg as its
// argument unless nil, under the timeout, leaving nret results on the
// stack. A timeout or a runtime error marks the state spent;
// weir.response.exit's unwinding is not an error.
func (f *filter) call(st *state, arg glua.LValue, nret int) error {
	L := st.L
	fn := st.fn[st.phase]
	if fn == nil {
		// A state whose top level defined fewer functions than the first
		// one did (a script that defines them conditionally): nothing to
		// run, as if the function had returned nothing.
		for i := 0; i < nret; i++ {
			L.Push(glua.LNil)
		}
		return nil
	}
	L.Push(fn)
	nargs := 0
	if st.kongSelf != nil && st.phase != phaseBodyFilter {
		// handler:access(conf) and the like (kong.lua binds them).
		L.Push(st.kongSelf)
		L.Push(st.kongConf)
		nargs = 2
	}
	if arg != nil {
		L.Push(arg)
		nargs = 1
	}
	st.dl.arm(f.s.timeout, f.s.memLimit)
	err := L.PCall(nargs, nret, nil)
	if !st.dl.disarm() {
		st.spent = true
	}
	if ae, ok := err.(*glua.ApiError); err == nil || ok && ae == st.exitErr {
		if st.conf != nil && !st.conf.intact() {
			f.confWritten(st)
		}
		return nil
	}
	st.spent = true
	f.errors[st.phase].Inc()
	if st.dl.expired() {
		switch st.dl.reason() {
		case errMemory:
			f.memory.Inc()
			return fmt.Errorf("lua: %s: the script went over its memory limit of %d MiB (memory_limit_mb)", st.phase, f.s.memLimit>>20)
		case errSteps:
			f.timeouts.Inc()
			return fmt.Errorf("lua: %s: the script used up the instruction budget of its %s timeout", st.phase, f.s.timeout)
		}
		f.timeouts.Inc()
		return fmt.Errorf("lua: %s: the script did not finish within %s (10 times its timeout) of wall-clock time", st.phase, wall(f.s.timeout))
	}
	return fmt.Errorf("lua: %s: %s", st.phase, errorText(err))
}

const (
	// maxLogBytes is what print and weir.log may write in one call.
	maxLogBytes = 64 << 10
	// logStepCost is what one log message costs of the call's budget, in
	// VM instructions (writing a log line takes a few microseconds).
	logStepCost = 200
)

// level is a log level for weir.log and print.
type level = slog.Level

const (
	levelInfo  = slog.LevelInfo
	levelWarn  = slog.LevelWarn
	levelError = slog.LevelError
)

// logf writes a message from the script, with the request ID when there
// is a request.
//
// What one call may log is bounded: past maxLogBytes its messages are
// dropped (and counted in one warning when the call ends), and each
// message is charged to the call's budget, so a print loop can neither
// fill the disk nor outlast its timeout.
func (f *filter) logf(st *state, lv level, msg string) {
	st.dl.charge(st.L, logStepCost+len(msg)>>4)
	if st.logged += len(msg); st.logged > maxLogBytes {
		st.dropped++
		return
	}
	if !f.log.Enabled(context.Background(), lv) {
		return
	}
	if st.c != nil {
		f.log.Log(context.Background(), lv, msg, "request_id", string(st.c.RequestID()), "phase", st.phase.String())
		return
	}
	f.log.Log(context.Background(), lv, msg, "phase", st.phase.String())
}

// bodyValue is the body as a Lua string.
func bodyValue(b []byte) glua.LValue {
	if len(b) == 0 {
		return lvEmpty
	}
	return glua.LString(b)
}
