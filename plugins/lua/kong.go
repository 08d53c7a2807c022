package lua

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	glua "github.com/yuin/gopher-lua"
)

// Kong plugins run unchanged on top of the weir PDK: kong.lua (compiled
// once, run as the script when `kong_plugin` is set) builds the `kong`,
// `ngx` and `cjson` globals and `require` in Lua over weir.*, loads the
// plugin's handler.lua and schema.lua, applies the schema to `config`,
// and defines the phase functions that call the handler's methods. What
// Lua cannot do alone is here, in a table of Go functions the prelude
// takes under a name no script can write (kongHelpers) and removes from
// the globals before the plugin's code runs.

//go:embed kong.lua
var kongPrelude string

const kongHelpers = "weir kong"

var (
	kongProtoOnce sync.Once
	kongProto     *glua.FunctionProto
	kongProtoErr  error
)

// compiledPrelude compiles kong.lua once per process.
func compiledPrelude() (*glua.FunctionProto, error) {
	kongProtoOnce.Do(func() { kongProto, kongProtoErr = compile(kongPrelude, "kong.lua") })
	return kongProto, kongProtoErr
}

// nodeID is kong.node.get_id(): one UUID per process, as Kong's is per node.
var nodeID = newUUID()

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// jsonNull is the value of cjson.null and ngx.null (a light userdata in
// OpenResty): JSON null in both directions.
type jsonNullT struct{}

var jsonNull = &jsonNullT{}

func installKongHelpers(L *glua.LState, st *state) {
	h := L.NewTable()
	null := L.NewUserData()
	null.Value = jsonNull
	st.null = null
	h.RawSetString("null", null)
	h.RawSetString("name", glua.LString(st.f.s.kongName))
	L.SetFuncs(h, map[string]glua.LGFunction{
		"module":   st.kongModule,
		"json_enc": st.jsonEncode,
		"json_dec": st.jsonDecode,
		"re":       st.regex,
		"b64":      func(L *glua.LState) int { return pushStr(L, base64.StdEncoding.EncodeToString(s2b(L.CheckString(1)))) },
		"unb64":    unbase64,
		"md5": func(L *glua.LState) int {
			s := md5.Sum(s2b(L.CheckString(1)))
			return pushStr(L, hex.EncodeToString(s[:]))
		},
		"md5_bin":    func(L *glua.LState) int { s := md5.Sum(s2b(L.CheckString(1))); return pushStr(L, string(s[:])) },
		"sha1_bin":   func(L *glua.LState) int { s := sha1.Sum(s2b(L.CheckString(1))); return pushStr(L, string(s[:])) },
		"hmac_sha1":  hmacSHA1,
		"uuid":       func(L *glua.LState) int { return pushStr(L, newUUID()) },
		"node_id":    func(L *glua.LState) int { return pushStr(L, nodeID) },
		"hostname":   func(L *glua.LState) int { h, _ := os.Hostname(); return pushStr(L, h) },
		"now":        func(L *glua.LState) int { L.Push(glua.LNumber(float64(time.Now().UnixMilli()) / 1000)); return 1 },
		"escape":     func(L *glua.LState) int { return pushStr(L, url.PathEscape(L.CheckString(1))) },
		"unescape":   unescapeURI,
		"query":      st.reqQuery,
		"raw_query":  st.reqRawQuery,
		"host":       st.reqHost,
		"scheme":     st.reqScheme,
		"port":       st.reqPort,
		"resp_hdrs":  st.respHeaders,
		"inspect":    inspect,
		"set_method": st.reqSetMethod,
		"pid":        func(L *glua.LState) int { L.Push(glua.LNumber(os.Getpid())); return 1 },
		"conn":       st.connVar,
		"request":    st.kongRequest,
		// The PDK functions a Kong handler calls on every request are Go
		// functions of their own rather than Lua wrappers over weir.*:
		// a Lua call more and two table lookups cost as much as the
		// work.
		"req_get_header": func(L *glua.LState) int { return st.getRequestHeader(L, "kong.request.get_header") },
		"svc_set_header": func(L *glua.LState) int {
			boolToString(L, 2)
			return st.setRequestHeader(L, "kong.service.request.set_header")
		},
		"resp_set_header": func(L *glua.LState) int {
			boolToString(L, 2)
			return st.setResponseHeader(L, "kong.response.set_header")
		},
		// bind hands the handler and its conf to Go, which passes them to
		// the phase methods the prelude installs directly (bound).
		"bind": func(L *glua.LState) int {
			st.kongSelf = L.CheckTable(1)
			st.kongConf = L.CheckTable(2)
			return 0
		},
		// keep marks a table the prelude keeps writable (ngx.arg, reset
		// per call) or that guards itself with a metatable (ngx.header,
		// ngx.var): not made read-only by the freeze, refused to rawset.
		"keep": func(L *glua.LState) int {
			t := L.CheckTable(1)
			st.mutable[t] = true
			st.readOnly[t] = true
			L.Push(t)
			return 1
		},
	})
	L.SetGlobal(kongHelpers, h)
}

// Pre-boxed "true" and "false": Kong's header setters take booleans.
var lvTrueString, lvFalseString glua.LValue = glua.LString("true"), glua.LString("false")

// boolToString replaces a boolean argument n by its string, as Kong's
// header setters do.
func boolToString(L *glua.LState, n int) {
	if b, ok := L.Get(n).(glua.LBool); ok {
		if b {
			L.Replace(n, lvTrueString)
		} else {
			L.Replace(n, lvFalseString)
		}
	}
}

func pushStr(L *glua.LState, s string) int {
	L.Push(glua.LString(s))
	return 1
}

func unbase64(L *glua.LState) int {
	b, err := base64.StdEncoding.DecodeString(L.CheckString(1))
	if err != nil {
		L.Push(glua.LNil)
		return 1
	}
	return pushStr(L, string(b))
}

func unescapeURI(L *glua.LState) int {
	s, err := url.PathUnescape(L.CheckString(1))
	if err != nil {
		s = L.CheckString(1)
	}
	return pushStr(L, s)
}

func hmacSHA1(L *glua.LState) int {
	m := hmac.New(sha1.New, s2b(L.CheckString(1)))
	m.Write(s2b(L.CheckString(2)))
	return pushStr(L, string(m.Sum(nil)))
}

// kongRequestKey keys the Kong shim's request-wide table in the Ctx: it
// holds kong.ctx.shared, ngx.ctx and whether kong.response.exit ran, for
// all the lua plugins of the request (each has its own kong.ctx.plugin).
var kongRequestKey = new(byte)

// kongRequest returns the request-wide table of the Kong shim (see
// kongRequestKey), loaded once per call.
func (st *state) kongRequest(L *glua.LState) int {
	if st.c == nil {
		L.RaiseError("kong.ctx: there is no request while the plugin loads; use it in a phase method")
	}
	if st.kong == nil {
		st.kong = st.loadTable(kongRequestKey)
	}
	L.Push(st.kong)
	return 1
}

// kongModule returns the loader of a module of the plugin's folder
// (kong.plugins.NAME.x is NAME/x.lua), or nil.
func (st *state) kongModule(L *glua.LState) int {
	p := st.f.s.modules[L.CheckString(1)]
	if p == nil {
		L.Push(glua.LNil)
		return 1
	}
	L.Push(L.NewFunctionFromProto(p))
	return 1
}

// jsonEncode is cjson.encode; it raises on what has no JSON form.
func (st *state) jsonEncode(L *glua.LState) int {
	v, err := toGo(L.CheckAny(1), 0, newConvBudget(st.f.s.memLimit))
	if err == nil {
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			st.dl.alloc(L, len(b))
			return pushStr(L, string(b))
		}
	}
	L.RaiseError("Cannot serialise: %s", err)
	return 0
}

// jsonDecode is cjson.decode; JSON null becomes cjson.null.
func (st *state) jsonDecode(L *glua.LState) int {
	s := L.CheckString(1)
	st.dl.alloc(L, 2*len(s))
	var v any
	if err := json.Unmarshal(s2b(s), &v); err != nil {
		L.RaiseError("Expected value but found invalid JSON: %s", err)
	}
	L.Push(toLuaNull(L, v, st.null))
	return 1
}

func toLuaNull(L *glua.LState, v any, null glua.LValue) glua.LValue {
	switch v := v.(type) {
	case nil:
		return null
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, x := range v {
			t.RawSetInt(i+1, toLuaNull(L, x, null))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, x := range v {
			t.RawSetString(k, toLuaNull(L, x, null))
		}
		return t
	}
	return toLua(L, v)
}

// ---- request and response extras for kong.request / ngx.var ----

func (st *state) reqQuery(L *glua.LState) int {
	c := st.request(L, "kong.request.get_query", inAny)
	t := L.NewTable()
	for k, v := range c.Request().URI().QueryArgs().All() {
		key := string(k)
		val := glua.LValue(glua.LString(v))
		if len(v) == 0 {
			val = glua.LTrue // Kong: an argument without a value is true
		}
		switch cur := t.RawGetString(key).(type) {
		case *glua.LNilType:
			t.RawSetString(key, val)
		case *glua.LTable:
			cur.Append(val)
		default:
			arr := L.CreateTable(2, 0)
			arr.Append(cur)
			arr.Append(val)
			t.RawSetString(key, arr)
		}
	}
	L.Push(t)
	return 1
}

func (st *state) reqRawQuery(L *glua.LState) int {
	c := st.request(L, "kong.request.get_raw_query", inAny)
	return pushStr(L, string(c.Request().URI().QueryString()))
}

func (st *state) reqHost(L *glua.LState) int {
	c := st.request(L, "kong.request.get_host", inAny)
	h := string(c.Host())
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return pushStr(L, strings.ToLower(h))
}

func (st *state) reqScheme(L *glua.LState) int {
	c := st.request(L, "kong.request.get_scheme", inAny)
	if c.RequestCtx().IsTLS() {
		return pushStr(L, "https")
	}
	return pushStr(L, "http")
}

func (st *state) reqPort(L *glua.LState) int {
	c := st.request(L, "kong.request.get_port", inAny)
	if _, p, err := splitHostPort(c.RequestCtx().LocalAddr().String()); err == nil {
		L.Push(glua.LNumber(p))
		return 1
	}
	L.Push(glua.LNil)
	return 1
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0, fmt.Errorf("no port")
	}
	p, err := strconv.Atoi(s[i+1:])
	return s[:i], p, err
}

// connVar returns ngx.var.server_addr, connection or connection_requests.
func (st *state) connVar(L *glua.LState) int {
	c := st.request(L, "ngx.var", inAny)
	rc := c.RequestCtx()
	switch L.CheckString(1) {
	case "server_addr":
		h, _, _ := splitHostPort(rc.LocalAddr().String())
		return pushStr(L, strings.Trim(h, "[]"))
	case "connection":
		return pushStr(L, strconv.FormatUint(rc.ConnID(), 10))
	case "connection_requests":
		return pushStr(L, strconv.FormatUint(rc.ConnRequestNum(), 10))
	}
	L.Push(glua.LNil)
	return 1
}

// reqSetMethod is kong.service.request.set_method.
func (st *state) reqSetMethod(L *glua.LState) int {
	c := st.request(L, "kong.service.request.set_method", inAccess)
	m := L.CheckString(1)
	switch m {
	case "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PATCH", "TRACE":
	default:
		L.RaiseError("kong.service.request.set_method: invalid method: %s", m)
	}
	c.Request().Header.SetMethod(m)
	return 0
}

// respHeaders is kong.response.get_headers (lower-case names, repeated
// headers as arrays), empty before there is a response.
func (st *state) respHeaders(L *glua.LState) int {
	c := st.request(L, "kong.response.get_headers", inAny)
	t := L.NewTable()
	if st.phase != phaseAccess {
		for k, v := range c.Response().Header.All() {
			key := strings.ToLower(string(k))
			switch cur := t.RawGetString(key).(type) {
			case *glua.LNilType:
				t.RawSetString(key, glua.LString(v))
			case *glua.LTable:
				cur.Append(glua.LString(v))
			default:
				arr := L.CreateTable(2, 0)
				arr.Append(cur)
				arr.Append(glua.LString(v))
				t.RawSetString(key, arr)
			}
		}
	}
	L.Push(t)
	return 1
}

// inspect is kong.log.inspect's formatter: a readable dump of a value.
func inspect(L *glua.LState) int {
	var b strings.Builder
	var dump func(v glua.LValue, depth int)
	dump = func(v glua.LValue, depth int) {
		if b.Len() > maxLogBytes {
			return
		}
		t, ok := v.(*glua.LTable)
		if !ok {
			if s, ok := v.(glua.LString); ok {
				b.WriteString(strconv.Quote(string(s)))
			} else {
				b.WriteString(v.String())
			}
			return
		}
		if depth > 8 {
			b.WriteString("{...}")
			return
		}
		b.WriteString("{")
		first := true
		t.ForEach(func(k, x glua.LValue) {
			if !first {
				b.WriteString(", ")
			}
			first = false
			if ks, ok := k.(glua.LString); ok {
				b.WriteString(string(ks))
			} else {
				b.WriteString("[" + k.String() + "]")
			}
			b.WriteString(" = ")
			dump(x, depth+1)
		})
		b.WriteString("}")
	}
	for i := 1; i <= L.GetTop(); i++ {
		if i > 1 {
			b.WriteString(" ")
		}
		dump(L.Get(i), 0)
	}
	return pushStr(L, b.String())
}

// ---- ngx.re on Go's regexp ----

// reCache holds compiled regular expressions by pattern and options.
var reCache sync.Map

const maxRegexCache = 4096

var reCount int64
var reMu sync.Mutex

// compileRe translates PCRE options Go's RE2 syntax knows: i (case), m
// (multi-line), s (dot matches newline), x is refused; o, j, J, u, U, d, a
// are accepted and ignored (caching and JIT are implicit; a anchors).
func compileRe(pat, opts string) (*regexp.Regexp, bool, error) {
	key := opts + "\x00" + pat
	if v, ok := reCache.Load(key); ok {
		e := v.(reEntry)
		return e.re, e.anchored, nil
	}
	flags := ""
	anchored := false
	for _, o := range opts {
		switch o {
		case 'i', 'm', 's':
			flags += string(o)
		case 'a':
			anchored = true
		case 'o', 'j', 'J', 'u', 'U', 'd', 'D':
		default:
			return nil, false, fmt.Errorf("unsupported regex option %q", o)
		}
	}
	p := pat
	if flags != "" {
		p = "(?" + flags + ")" + p
	}
	if anchored {
		p = `\A(?:` + p + `)`
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, false, err
	}
	reMu.Lock()
	if reCount < maxRegexCache {
		reCount++
		reCache.Store(key, reEntry{re, anchored})
	}
	reMu.Unlock()
	return re, anchored, nil
}

type reEntry struct {
	re       *regexp.Regexp
	anchored bool
}

// regex implements ngx.re: re(op, subject, pattern, opts, [init|repl], ...)
// with op "match", "find", "gsub", "sub" or "gmatch". Go's regexp is linear
// in the subject; its cost is charged at one step per 16 bytes.
func (st *state) regex(L *glua.LState) int {
	op := L.CheckString(1)
	subj := L.CheckString(2)
	re, _, err := compileRe(L.CheckString(3), L.OptString(4, ""))
	if err != nil {
		L.Push(glua.LNil)
		L.Push(glua.LString("failed to compile regex: " + err.Error()))
		return 2
	}
	st.dl.charge(L, len(subj)>>4+re.NumSubexp())
	switch op {
	case "match", "find":
		init := 0
		if v, ok := L.Get(5).(glua.LNumber); ok && int(v) > 1 {
			init = min(int(v)-1, len(subj))
		}
		loc := re.FindStringSubmatchIndex(subj[init:])
		if loc == nil {
			L.Push(glua.LNil)
			return 1
		}
		if op == "find" {
			L.Push(glua.LNumber(loc[0] + init + 1))
			L.Push(glua.LNumber(loc[1] + init))
			return 2
		}
		L.Push(captureTable(L, re, subj[init:], loc))
		return 1
	case "gmatch":
		all := re.FindAllStringSubmatchIndex(subj, -1)
		st.dl.alloc(L, len(all)*matchBytes(re))
		i := 0
		L.Push(L.NewFunction(func(L *glua.LState) int {
			if i >= len(all) {
				L.Push(glua.LNil)
				return 1
			}
			L.Push(captureTable(L, re, subj, all[i]))
			i++
			return 1
		}))
		return 1
	case "gsub", "sub":
		n := -1
		if op == "sub" {
			n = 1
		}
		repl := L.Get(5)
		var b strings.Builder
		last, count := 0, 0
		all := re.FindAllStringSubmatchIndex(subj, n)
		st.dl.alloc(L, len(all)*matchBytes(re))
		for _, loc := range all {
			b.WriteString(subj[last:loc[0]])
			switch r := repl.(type) {
			case *glua.LFunction:
				L.Push(r)
				L.Push(captureTable(L, re, subj, loc))
				L.Call(1, 1)
				b.WriteString(glua.LVAsString(L.Get(-1)))
				L.Pop(1)
			default:
				b.Write(re.ExpandString(nil, ngxTemplate(glua.LVAsString(r)), subj, loc))
			}
			st.dl.alloc(L, b.Len()-last)
			last = loc[1]
			count++
		}
		b.WriteString(subj[last:])
		L.Push(glua.LString(b.String()))
		L.Push(glua.LNumber(count))
		return 2
	}
	L.RaiseError("ngx.re: unknown operation %s", op)
	return 0
}

// matchBytes is what one match of re found by FindAll...Index holds: its
// slice header and two ints per group.
func matchBytes(re *regexp.Regexp) int { return 24 + 16*(re.NumSubexp()+1) }

// ngxTemplate converts an ngx.re replacement ($0, $1, ${1}, $$) into Go's
// Expand template (${1}), so "$1x" keeps meaning capture 1 then "x".
func ngxTemplate(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		switch {
		case s[j] == '$':
			b.WriteString("$$")
			i = j
		case s[j] >= '0' && s[j] <= '9':
			k := j
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			b.WriteString("${" + s[j:k] + "}")
			i = k - 1
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// captureTable is ngx.re.match's result: [0] the whole match, [1..n] the
// groups (false when a group did not take part), and named groups by name.
func captureTable(L *glua.LState, re *regexp.Regexp, s string, loc []int) *glua.LTable {
	t := L.CreateTable(len(loc)/2, 0)
	names := re.SubexpNames()
	for i := 0; i < len(loc)/2; i++ {
		var v glua.LValue = glua.LFalse
		if loc[2*i] >= 0 {
			v = glua.LString(s[loc[2*i]:loc[2*i+1]])
		}
		t.RawSetInt(i, v)
		if names[i] != "" {
			t.RawSetString(names[i], v)
		}
	}
	return t
}
