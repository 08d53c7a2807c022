package lua

import (
	"fmt"
	"strings"

	"github.com/weirgw/weir/sdk"
	glua "github.com/yuin/gopher-lua"
)

// phase is the part of a request a script function runs in.
type phase uint8

const (
	phaseAccess phase = iota
	phaseHeaderFilter
	phaseBodyFilter
	phaseLog
	nPhases
	// phaseInit is the script's top level, run once per state when it is
	// prepared; there is no request then.
	phaseInit = nPhases
)

// phaseNames are the Lua global function names, indexed by phase.
var phaseNames = [nPhases + 1]string{"access", "header_filter", "body_filter", "log", "init"}

func (p phase) String() string { return phaseNames[p] }

// Limits of one Lua state. gopher-lua has no allocator hook: besides these
// (the value stack and the call depth), memory is bounded by what the
// budget counts (strings created: strlib.go, concat.go; tables held,
// sampled: tables.go); see README.md, "Sandbox".
const (
	// callStackSize is the deepest Lua call nesting (recursion).
	callStackSize = 200
	// registrySize is the initial value stack, in slots of 16 bytes
	// (16 KiB; gopher-lua's default is 5120 slots). It grows on demand.
	registrySize = 1024
	// registryMaxSize is how far the value stack may grow (1 MiB).
	registryMaxSize = 64 * 1024
	// registryGrowStep is how many slots are added when it grows. gopher-lua
	// grows linearly, copying the stack each time, so small steps make a
	// deep stack quadratic.
	registryGrowStep = 4096
)

// state is one prepared Lua VM. It is owned by one goroutine at a time
// (see statePool) and is never shared.
type state struct {
	L  *glua.LState
	dl *deadline
	f  *filter
	fn [nPhases]*glua.LFunction

	// Per call: the request, the phase, whether weir.response.exit ran,
	// and the weir.ctx.shared table if the call touched it. Cleared by
	// finish so that nothing of a request stays in a pooled state.
	c      *sdk.Ctx
	phase  phase
	exited bool
	shared *glua.LTable
	// kong is the Kong shim's request-wide table (kong.ctx.shared,
	// ngx.ctx: shared by all the lua plugins of the request), if the call
	// touched it; kept in the Ctx under kongRequestKey.
	kong *glua.LTable

	// exitSignal is the error value weir.response.exit raises to unwind
	// the script; call recognises it and treats it as a normal end.
	// exitErr is the prepared error carrying it, raised by exitPanic.
	// null is cjson.null / ngx.null for Kong plugins.
	null *glua.LUserData

	exitSignal *glua.LUserData
	exitErr    *glua.ApiError

	// readOnly are the tables rawset refuses (the globals, the
	// libraries and the PDK, frozen by freezeGlobals, and the shim's
	// kept tables); mutable are PDK tables left writable because they
	// are reset for every request.
	readOnly map[*glua.LTable]bool
	mutable  map[*glua.LTable]bool

	// logged is how many bytes print and weir.log wrote in this call;
	// dropped how many messages went over maxLogBytes.
	logged  int
	dropped int

	// conf checks after each call that conf is as the top level left it
	// (conf.go); nil when conf is not a table.
	conf *confGuard

	// lastKey is the header name a set_header call checked and
	// normalized last, and lastKeyForm its normalized form (headerKey).
	lastKey     string
	lastKeyForm []byte

	// priority is the global PRIORITY the top level left (filter.priority).
	priority int

	// kongSelf and kongConf are a Kong handler and its conf (set by the
	// shim's H.bind): the access, header_filter and log functions are
	// the handler's methods, called with them as arguments.
	kongSelf, kongConf *glua.LTable

	spent    bool // timed out or failed: close, never pool
	overflow bool // prepared beyond pool_size: close on return
}

// newState prepares a state: safe libraries, the weir PDK, conf, and the
// script's top level, run once to define the phase functions.
func newState(f *filter) (*state, error) {
	L := glua.NewState(glua.Options{
		SkipOpenLibs:     true,
		CallStackSize:    callStackSize,
		RegistrySize:     registrySize,
		RegistryMaxSize:  registryMaxSize,
		RegistryGrowStep: registryGrowStep,
	})
	st := &state{L: L, dl: newDeadline(), f: f, phase: phaseInit, mutable: map[*glua.LTable]bool{}}
	st.dl.L = L
	st.exitSignal = L.NewUserData()
	st.exitErr = &glua.ApiError{Type: glua.ApiErrorRun, Object: st.exitSignal, StackTrace: "weir.response.exit"}
	if err := st.prepare(); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

func (st *state) prepare() error {
	L := st.L
	openSandbox(L, st)
	installPDK(L, st)
	if st.f.s.kongName != "" {
		installKongHelpers(L, st)
	}
	conf := L.NewTable()
	if st.f.s.conf != nil {
		conf = toLua(L, st.f.s.conf).(*glua.LTable)
	}
	L.SetGlobal("conf", conf)
	L.SetContext(st.dl)

	L.Push(L.NewFunctionFromProto(st.f.s.proto))
	initTimeout := max(st.f.s.timeout, minInitTimeout)
	st.dl.arm(initTimeout, st.f.s.memLimit)
	err := L.PCall(0, 0, nil)
	inTime := st.dl.disarm()
	if err != nil {
		if !inTime || st.dl.expired() {
			return fmt.Errorf("the script's top level did not finish within %s (%s); move the work into a phase function", initTimeout, st.dl.reason())
		}
		return fmt.Errorf("running the script's top level: %s", errorText(err))
	}
	if !inTime {
		return fmt.Errorf("the script's top level did not finish within %s; move the work into a phase function", initTimeout)
	}
	for p := phase(0); p < nPhases; p++ {
		switch v := L.GetGlobal(p.String()).(type) {
		case *glua.LNilType:
		case *glua.LFunction:
			st.fn[p] = v
		default:
			return fmt.Errorf("%s must be a function, got a %s", p, v.Type())
		}
	}
	switch v := L.GetGlobal("PRIORITY").(type) {
	case *glua.LNilType:
	case glua.LNumber:
		st.priority = int(v)
	default:
		return fmt.Errorf("PRIORITY must be a number (the order of the lua plugins of a route, highest first), got a %s", v.Type())
	}
	freezeGlobals(L, st)
	// After freezing, which sets the metatables of the tables it makes
	// read-only (a conf that is one of them would otherwise differ from
	// what was recorded at the first check).
	if t, ok := L.GetGlobal("conf").(*glua.LTable); ok {
		st.conf = newConfGuard(t)
	}
	L.SetTop(0)
	return nil
}

// begin binds the state to a request for one phase call.
func (st *state) begin(c *sdk.Ctx, p phase) {
	st.c = c
	st.phase = p
	st.exited = false
	st.shared, st.kong = nil, nil
	st.logged, st.dropped = 0, 0
}

// finish unbinds the state from its request, keeping weir.ctx.shared
// (and the Kong shim's request-wide table) in the Ctx for the next phase
// if the call touched it.
func (st *state) finish() error {
	var err error
	if st.dropped > 0 {
		st.f.log.Warn("lua: log output over the limit of one call was dropped", "request_id", string(st.c.RequestID()), "phase", st.phase.String(), "dropped_messages", st.dropped, "limit_bytes", maxLogBytes)
	}
	if st.shared != nil {
		err = st.saveTable(st.f, st.shared, "weir.ctx.shared keeps")
	}
	if st.kong != nil {
		if e := st.saveTable(kongRequestKey, st.kong, "kong.ctx.shared and ngx.ctx keep"); err == nil {
			err = e
		}
	}
	st.c = nil
	st.shared, st.kong = nil, nil
	st.phase = phaseInit
	st.L.SetTop(0)
	return err
}

// loadTable is the per-request table stored in the Ctx under key by an
// earlier call (saveTable), as a new Lua table, or an empty one.
func (st *state) loadTable(key any) *glua.LTable {
	switch v := st.c.Value(key).(type) {
	case map[string]any:
		return toLua(st.L, v).(*glua.LTable)
	case []any:
		return toLua(st.L, v).(*glua.LTable)
	}
	return st.L.NewTable()
}

// saveTable copies t out of the VM into the Ctx under key, for the next
// call of the request (which may run on another VM); what names the
// table and its verb for the error.
func (st *state) saveTable(key any, t *glua.LTable, what string) error {
	v, err := tableToGo(t, 1, newConvBudget(st.f.s.memLimit))
	if err != nil {
		return fmt.Errorf("lua: %s: %s only nil, booleans, numbers, strings and tables of them: %w", st.phase, what, err)
	}
	st.c.SetValue(key, v)
	return nil
}

// exitPanic is installed as L.Panic by weir.response.exit (see respExit).
func (st *state) exitPanic(*glua.LState) { panic(st.exitErr) }

func (st *state) close() {
	st.dl.stop()
	st.L.Close()
}

// errorText is the first line of a Lua error: the message with its
// "chunk:line:" position, without gopher-lua's stack traceback.
func errorText(err error) string {
	if ae, ok := err.(*glua.ApiError); ok && ae.Object != nil {
		return ae.Object.String()
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
