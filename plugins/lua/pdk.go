package lua

import (
	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
	"github.com/weirgw/weir/sdk"
	glua "github.com/yuin/gopher-lua"
)

// The PDK: a global `weir` table modelled on Kong's PDK
// (https://docs.konghq.com/gateway/latest/plugin-development/pdk/), with
// plain-string arguments. Every function is a Go closure bound to one state;
// the request it works on is st.c, set for the duration of one phase call.
// README.md documents each function and the phases it may run in.

// phases is a set of phases.
type phases uint8

func (ps phases) has(p phase) bool { return ps&(1<<p) != 0 }

const (
	inAccess       = phases(1 << phaseAccess)
	inHeaderFilter = phases(1 << phaseHeaderFilter)
	inBodyFilter   = phases(1 << phaseBodyFilter)
	inLog          = phases(1 << phaseLog)
	inResponse     = inHeaderFilter | inBodyFilter
	inAny          = inAccess | inResponse | inLog
)

// Pre-boxed Lua values for common results: converting a string to a Lua
// value allocates, these do not.
var (
	lvMethods = map[string]glua.LValue{}
	lvEmpty   = glua.LValue(glua.LString(""))
	// lvInts are the integers 0..1023 (status codes, match counts).
	lvInts [1024]glua.LValue
)

// lvInt is n as a Lua number, boxed once for small n.
func lvInt(n int) glua.LValue {
	if uint(n) < uint(len(lvInts)) {
		return lvInts[n]
	}
	return glua.LNumber(n)
}

func init() {
	for i := range lvInts {
		lvInts[i] = glua.LNumber(i)
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"} {
		lvMethods[m] = glua.LString(m)
	}
}

func installPDK(L *glua.LState, st *state) {
	weir := L.NewTable()

	req := L.NewTable()
	L.SetFuncs(req, map[string]glua.LGFunction{
		"get_header":      st.reqGetHeader,
		"get_headers":     st.reqGetHeaders,
		"get_method":      st.reqGetMethod,
		"get_path":        st.reqGetPath,
		"get_query_arg":   st.reqGetQueryArg,
		"get_body":        st.reqGetBody,
		"set_header":      st.reqSetHeader,
		"clear_header":    st.reqClearHeader,
		"set_path":        st.reqSetPath,
		"set_query_arg":   st.reqSetQueryArg,
		"clear_query_arg": st.reqClearQueryArg,
		"set_body":        st.reqSetBody,
	})
	weir.RawSetString("request", req)

	resp := L.NewTable()
	L.SetFuncs(resp, map[string]glua.LGFunction{
		"exit":         st.respExit,
		"get_header":   st.respGetHeader,
		"set_header":   st.respSetHeader,
		"clear_header": st.respClearHeader,
		"get_status":   st.respGetStatus,
		"set_status":   st.respSetStatus,
	})
	weir.RawSetString("response", resp)

	ctx := L.NewTable()
	ctx.RawSetString("param", L.NewFunction(st.ctxParam))
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(st.ctxIndex))
	mt.RawSetString("__newindex", L.NewFunction(func(L *glua.LState) int {
		L.RaiseError("weir.ctx is read-only; keep request data in weir.ctx.shared")
		return 0
	}))
	L.SetMetatable(ctx, mt)
	weir.RawSetString("ctx", ctx)

	lg := L.NewTable()
	L.SetFuncs(lg, map[string]glua.LGFunction{
		"info":  func(L *glua.LState) int { st.f.logf(st, levelInfo, joinArgs(L, "")); return 0 },
		"warn":  func(L *glua.LState) int { st.f.logf(st, levelWarn, joinArgs(L, "")); return 0 },
		"err":   func(L *glua.LState) int { st.f.logf(st, levelError, joinArgs(L, "")); return 0 },
		"field": st.logField,
	})
	weir.RawSetString("log", lg)

	L.SetGlobal("weir", weir)
}

// request checks that fn is called during a request, in one of the
// allowed phases, and returns the request's Ctx. It raises a Lua error
// (which never returns) otherwise.
func (st *state) request(L *glua.LState, fn string, allowed phases) *sdk.Ctx {
	if st.c == nil {
		L.RaiseError("%s: there is no request while the script loads; call it from a phase function", fn)
	}
	if !allowed.has(st.phase) {
		L.RaiseError("%s is not available in %s", fn, st.phase)
	}
	return st.c
}

// pushBytes pushes b as a Lua string (nil for a nil slice), copying it.
func pushBytes(L *glua.LState, b []byte, present bool) int {
	switch {
	case !present:
		L.Push(glua.LNil)
	case len(b) == 0:
		L.Push(lvEmpty)
	default:
		L.Push(glua.LString(b))
	}
	return 1
}

// checkHeader reads a header name (and, with value, a value) from the
// arguments and refuses what cannot be sent on the wire.
func checkHeaderName(L *glua.LState, fn string, n int) string {
	name := L.CheckString(n)
	if !httpsyntax.IsToken(name) {
		L.RaiseError("%s: %q is not a valid header name (RFC 9110 token characters only)", fn, name)
	}
	if framingHeader(name) {
		L.RaiseError("%s: %s is set by the gateway from the body actually sent", fn, name)
	}
	return name
}

func checkHeaderValue(L *glua.LState, fn string, n int) string {
	v := L.CheckString(n)
	if !httpsyntax.ValidFieldValue(v) {
		L.RaiseError("%s: the header value contains a control character (CR, LF, NUL...)", fn)
	}
	return v
}

// ---- weir.request ----

func (st *state) reqGetHeader(L *glua.LState) int {
	return st.getRequestHeader(L, "weir.request.get_header")
}

// getRequestHeader is weir.request.get_header, and the Kong shim's
// kong.request.get_header; fn names it in errors.
func (st *state) getRequestHeader(L *glua.LState, fn string) int {
	c := st.request(L, fn, inAny)
	v := c.Request().Header.Peek(L.CheckString(1))
	return pushBytes(L, v, v != nil)
}

// reqGetHeaders returns every request header in a table keyed by lower-case
// name; a header sent more than once is an array of its values.
func (st *state) reqGetHeaders(L *glua.LState) int {
	c := st.request(L, "weir.request.get_headers", inAny)
	t := L.NewTable()
	var lower []byte
	for k, v := range c.Request().Header.All() {
		lower = append(lower[:0], k...)
		for i, ch := range lower {
			if 'A' <= ch && ch <= 'Z' {
				lower[i] = ch + 'a' - 'A'
			}
		}
		key := string(lower)
		val := glua.LString(v)
		switch cur := t.RawGetString(key).(type) {
		case glua.LString:
			arr := L.CreateTable(2, 0)
			arr.Append(cur)
			arr.Append(val)
			t.RawSetString(key, arr)
		case *glua.LTable:
			cur.Append(val)
		default:
			t.RawSetString(key, val)
		}
	}
	L.Push(t)
	return 1
}

func (st *state) reqGetMethod(L *glua.LState) int {
	c := st.request(L, "weir.request.get_method", inAny)
	m := c.Method()
	if lv, ok := lvMethods[string(m)]; ok {
		L.Push(lv)
		return 1
	}
	return pushBytes(L, m, true)
}

// reqGetPath is the normalized path (sdk.Ctx.Path), the one every routing
// and filtering decision uses.
func (st *state) reqGetPath(L *glua.LState) int {
	c := st.request(L, "weir.request.get_path", inAny)
	return pushBytes(L, c.Path(), true)
}

func (st *state) reqGetQueryArg(L *glua.LState) int {
	c := st.request(L, "weir.request.get_query_arg", inAny)
	args := c.Request().URI().QueryArgs()
	name := L.CheckString(1)
	v := args.Peek(name)
	return pushBytes(L, v, v != nil || args.Has(name))
}

// reqGetBody returns the request body, or nil when the proxy streams it
// (larger than 256 KiB): reading it would hold it all in memory.
func (st *state) reqGetBody(L *glua.LState) int {
	c := st.request(L, "weir.request.get_body", inAny)
	if !c.BodyBuffered() {
		L.Push(glua.LNil)
		return 1
	}
	return pushBytes(L, c.RequestBody(), true)
}

func (st *state) reqSetHeader(L *glua.LState) int {
	return st.setRequestHeader(L, "weir.request.set_header")
}

// setRequestHeader is weir.request.set_header, and the Kong shim's
// kong.service.request.set_header; fn names it in errors.
func (st *state) setRequestHeader(L *glua.LState, fn string) int {
	c := st.request(L, fn, inAccess)
	_, key := st.headerKey(L, fn, 1)
	value := checkHeaderValue(L, fn, 2)
	c.Request().Header.SetCanonical(key, s2b(value))
	return 0
}

// headerKey is checkHeaderName of argument n, with the name in the form
// fasthttp keeps header names in (the gateway normalizes them: X-From),
// for SetCanonical: Header.Set would copy and normalize the name, and
// scan the value for new lines, on every call. A script sets the same
// few names again and again (often one string constant), so the last
// name checked is kept with its form: the same name again costs one
// comparison. The value is checked for control characters apart
// (checkHeaderValue).
func (st *state) headerKey(L *glua.LState, fn string, n int) (string, []byte) {
	name := L.CheckString(n)
	if name == "" || name != st.lastKey {
		checkHeaderName(L, fn, n)
		st.lastKeyForm = fasthttp.AppendNormalizedHeaderKey(st.lastKeyForm[:0], name)
		st.lastKey = name
	}
	return name, st.lastKeyForm
}

func (st *state) reqClearHeader(L *glua.LState) int {
	const fn = "weir.request.clear_header"
	c := st.request(L, fn, inAccess)
	c.Request().Header.Del(checkHeaderName(L, fn, 1))
	return 0
}

// reqSetPath sets the path sent upstream. The proxy percent-encodes it, so
// any text is safe; it must be absolute.
func (st *state) reqSetPath(L *glua.LState) int {
	const fn = "weir.request.set_path"
	c := st.request(L, fn, inAccess)
	p := L.CheckString(1)
	if p == "" || p[0] != '/' {
		L.RaiseError("%s: the path must start with /, got %q", fn, p)
	}
	if !httpsyntax.ValidFieldValue(p) {
		L.RaiseError("%s: the path contains a control character", fn)
	}
	c.SetUpstreamPath(s2b(p))
	return 0
}

// reqSetQueryArg sets one query argument. The proxy forwards the raw query
// string, so the edited arguments are written back to it (which re-encodes
// the whole query string).
func (st *state) reqSetQueryArg(L *glua.LState) int {
	c := st.request(L, "weir.request.set_query_arg", inAccess)
	uri := c.Request().URI()
	args := uri.QueryArgs()
	args.Set(L.CheckString(1), L.CheckString(2))
	uri.SetQueryStringBytes(args.QueryString())
	return 0
}

func (st *state) reqClearQueryArg(L *glua.LState) int {
	c := st.request(L, "weir.request.clear_query_arg", inAccess)
	uri := c.Request().URI()
	args := uri.QueryArgs()
	args.Del(L.CheckString(1))
	uri.SetQueryStringBytes(args.QueryString())
	return 0
}

func (st *state) reqSetBody(L *glua.LState) int {
	const fn = "weir.request.set_body"
	c := st.request(L, fn, inAccess)
	body := L.CheckString(1)
	if !c.BodyBuffered() {
		L.RaiseError("%s: the request body is streamed (over 256 KiB) and cannot be replaced", fn)
	}
	c.SetRequestBody(s2b(body))
	return 0
}

// ---- weir.response ----

// checkHeaderTable returns what is wrong with a table of headers for
// weir.response.exit (string names, string or number values), or "".
func checkHeaderTable(h *glua.LTable) string {
	var bad string
	h.ForEach(func(k, v glua.LValue) {
		if bad != "" {
			return
		}
		name, ok := k.(glua.LString)
		switch {
		case !ok || !httpsyntax.IsToken(string(name)):
			bad = "invalid header name " + k.String()
		case framingHeader(string(name)):
			bad = string(name) + " is set by the gateway from the body actually sent"
		case v.Type() != glua.LTString && v.Type() != glua.LTNumber, !httpsyntax.ValidFieldValue(v.String()):
			bad = "invalid value for header " + string(name)
		}
	})
	return bad
}

// respExit answers the request: weir.response.exit(status, body, headers).
// body is a string, or a table sent as JSON. It does not return: it unwinds
// the script with st.exitSignal, and the phase ends with sdk.Stop.
func (st *state) respExit(L *glua.LState) int {
	const fn = "weir.response.exit"
	c := st.request(L, fn, inAccess)
	status := L.CheckInt(1)
	if status < 200 || status > 599 {
		L.RaiseError("%s: status must be between 200 and 599, got %d", fn, status)
	}
	// Check everything before writing, so that a refused call leaves the
	// response untouched.
	var body []byte
	isJSON := false
	switch b := L.Get(2).(type) {
	case *glua.LNilType:
	case glua.LString:
		body = s2b(string(b))
	case *glua.LTable:
		v, err := tableToGo(b, 1, newConvBudget(st.f.s.memLimit))
		if err == nil {
			body, err = json.Marshal(v)
		}
		if err != nil {
			L.RaiseError("%s: the body table cannot be sent as JSON: %s", fn, err)
		}
		isJSON = true
	default:
		L.TypeError(2, glua.LTString)
	}
	var headers *glua.LTable
	switch h := L.Get(3).(type) {
	case *glua.LNilType:
	case *glua.LTable:
		headers = h
		if bad := checkHeaderTable(h); bad != "" {
			L.RaiseError("%s: %s", fn, bad)
		}
	default:
		L.TypeError(3, glua.LTTable)
	}

	resp := c.Response()
	resp.ResetBody()
	resp.SetStatusCode(status)
	if isJSON {
		resp.Header.SetContentType("application/json")
	}
	if headers != nil {
		headers.ForEach(func(k, v glua.LValue) {
			resp.Header.Set(string(k.(glua.LString)), v.String())
		})
	}
	resp.SetBody(body)
	st.exited = true
	// Unwind the script. L.Error closes the open upvalues of the frames
	// being dropped (a closure made in them keeps working) and then calls
	// L.Panic, which PCall set for this call and restores when it returns.
	// Ours raises a prepared error that already carries a "stack trace",
	// so PCall does not build one: that walk costs ~25 allocations and
	// most of the time of an exit.
	L.Panic = st.exitPanic
	L.Error(st.exitSignal, 0)
	return 0
}

func (st *state) respGetHeader(L *glua.LState) int {
	c := st.request(L, "weir.response.get_header", inAny)
	name := L.CheckString(1)
	if st.phase == phaseAccess {
		L.Push(glua.LNil) // no response yet
		return 1
	}
	v := c.Response().Header.Peek(name)
	return pushBytes(L, v, v != nil)
}

// respSetHeader in access defers the header to whatever response the client
// finally gets (sdk.Ctx.SetResponseHeader); in header_filter and body_filter
// it sets it on the response directly.
// logField adds a field to the request's access-log line
// (sdk.Ctx.SetLogField). The line is written when the answer is ready,
// so only the access and response phases may add to it.
func (st *state) logField(L *glua.LState) int {
	const fn = "weir.log.field"
	c := st.request(L, fn, inAccess|inResponse)
	name := L.CheckString(1)
	if !validLogFieldName(name) {
		L.RaiseError("%s: %q is not a field name: use 1 to 64 lower-case letters, digits and _", fn, name)
	}
	c.SetLogField(name, s2b(L.CheckString(2)))
	return 0
}

func validLogFieldName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if ch := name[i]; !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}

func (st *state) respSetHeader(L *glua.LState) int {
	return st.setResponseHeader(L, "weir.response.set_header")
}

// setResponseHeader is weir.response.set_header, and the Kong shim's
// kong.response.set_header; fn names it in errors.
func (st *state) setResponseHeader(L *glua.LState, fn string) int {
	c := st.request(L, fn, inAccess|inResponse)
	name, key := st.headerKey(L, fn, 1)
	value := checkHeaderValue(L, fn, 2)
	if st.phase == phaseAccess {
		c.SetResponseHeader(name, s2b(value))
	} else {
		c.Response().Header.SetCanonical(key, s2b(value))
	}
	return 0
}

func (st *state) respClearHeader(L *glua.LState) int {
	const fn = "weir.response.clear_header"
	c := st.request(L, fn, inResponse)
	c.Response().Header.Del(checkHeaderName(L, fn, 1))
	return 0
}

func (st *state) respGetStatus(L *glua.LState) int {
	c := st.request(L, "weir.response.get_status", inAny)
	if st.phase == phaseAccess {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(lvInt(c.Response().StatusCode()))
	return 1
}

func (st *state) respSetStatus(L *glua.LState) int {
	const fn = "weir.response.set_status"
	c := st.request(L, fn, inHeaderFilter)
	status := L.CheckInt(1)
	if status < 200 || status > 599 {
		L.RaiseError("%s: status must be between 200 and 599, got %d", fn, status)
	}
	c.Response().SetStatusCode(status)
	return 0
}

// ---- weir.ctx ----

func (st *state) ctxParam(L *glua.LState) int {
	c := st.request(L, "weir.ctx.param", inAny)
	v := c.Param(L.CheckString(1))
	return pushBytes(L, v, v != nil)
}

// ctxIndex computes weir.ctx fields when read, so that a script pays only
// for what it uses.
func (st *state) ctxIndex(L *glua.LState) int {
	key := L.CheckString(2)
	c := st.c
	if c == nil {
		L.RaiseError("weir.ctx.%s: there is no request while the script loads; read it in a phase function", key)
	}
	switch key {
	case "route":
		if c.Route == st.f.route {
			L.Push(st.f.routeLV)
		} else {
			L.Push(glua.LString(c.Route))
		}
	case "service":
		L.Push(glua.LString(c.Service))
	case "consumer":
		if cons := c.Consumer(); cons != nil {
			L.Push(glua.LString(cons.Name))
		} else {
			L.Push(glua.LNil)
		}
	case "request_id":
		pushBytes(L, c.RequestID(), true)
	case "client_ip":
		if ip := c.ClientIP(); ip.IsValid() {
			L.Push(glua.LString(ip.String()))
		} else {
			L.Push(glua.LNil)
		}
	case "phase":
		L.Push(glua.LString(st.phase.String()))
	case "shared":
		if st.shared == nil {
			st.shared = st.loadTable(st.f)
		}
		L.Push(st.shared)
	default:
		L.Push(glua.LNil)
	}
	return 1
}
