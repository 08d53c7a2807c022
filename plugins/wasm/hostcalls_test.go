package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// Host functions called directly on a real instance of the hostile guest
// (whose allocator always returns address 1024), with their arguments
// placed in its memory: every status and effect of the ABI surface,
// without writing a guest per case.

const (
	hIn    = 4096 // where harness inputs go
	hRet   = 16   // return slot: pointer
	hRetSz = 20   // return slot: size
	hBuf   = 1024 // what the guest's allocator hands out
)

type harness struct {
	t    testing.TB
	next uint32 // where put writes next
	f    *filter
	in   *instance
	rc   *fasthttp.RequestCtx
	c    *sdk.Ctx
	rs   *reqState
}

func newHarness(t testing.TB, p phase, headers ...string) *harness {
	t.Helper()
	f := newFilter(t, writeModule(t, "hostile", hostileGuest()), map[string]any{"pool_size": 1, "config": map[string]any{"k": "v"}}, nil)
	rc, c := request("POST", "/v1/users/a%20b?q=1", "body!", headers...)
	rs := acquireReqState()
	rs.id = 2
	in := f.pool.slots[0].inst
	in.begin(rs, c, p)
	t.Cleanup(func() { in.end(); releaseReqState(rs); sdk.ReleaseCtx(c) })
	return &harness{t: t, f: f, in: in, rc: rc, c: c, rs: rs}
}

// put writes each string into guest memory, each at a fresh address from
// hIn on, and returns (address, size) pairs as call arguments.
func (h *harness) put(ss ...string) []uint64 {
	h.t.Helper()
	var args []uint64
	if h.next < hIn || h.next > 48<<10 {
		h.next = hIn
	}
	addr := h.next
	for _, s := range ss {
		if !h.in.mem.Write(addr, []byte(s)) {
			h.t.Fatal("harness: write out of memory")
		}
		args = append(args, uint64(addr), uint64(len(s)))
		addr += uint32(len(s)) + 8
	}
	h.next = addr
	return args
}

// call runs fn with args and returns its status.
func (h *harness) call(fn hostFn, args ...uint64) status {
	stack := make([]uint64, max(len(args), 1))
	copy(stack, args)
	return fn(h.in, stack)
}

// out reads what a getter returned through the return slots.
func (h *harness) out() []byte {
	h.t.Helper()
	p, _ := h.in.mem.ReadUint32Le(hRet)
	n, _ := h.in.mem.ReadUint32Le(hRetSz)
	b, ok := h.in.read(p, n)
	if !ok {
		h.t.Fatalf("harness: returned buffer %d+%d out of memory", p, n)
	}
	return append([]byte(nil), b...)
}

func args(parts ...any) []uint64 {
	var out []uint64
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			out = append(out, uint64(uint32(v)))
		case uint32:
			out = append(out, uint64(v))
		case []uint64:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("args: %T", p))
		}
	}
	return out
}

func decode(t testing.TB, b []byte) []string {
	t.Helper()
	p, err := parsePairs(b)
	if err != nil {
		t.Fatalf("host produced a malformed map: %v", err)
	}
	var out []string
	for {
		k, v, ok := p.next()
		if !ok {
			return out
		}
		out = append(out, string(k)+": "+string(v))
	}
}

func TestHostRequestHeaderPairs(t *testing.T) {
	h := newHarness(t, phaseRequest, "X-One: 1", "X-Multi: a", "X-Multi: b")
	if st := h.call(hostGetHeaderMapPairs, mapRequestHeaders, hRet, hRetSz); st != statusOK {
		t.Fatalf("status %d", st)
	}
	got := strings.Join(decode(t, h.out()), "\n")
	for _, want := range []string{":authority: api.example.com", ":method: POST", ":path: /v1/users/a%20b?q=1", ":scheme: http", "x-one: 1", "x-multi: a", "x-multi: b", "content-length: 5"} {
		if !strings.Contains(got, want+"\n") && !strings.HasSuffix(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "\nhost:") {
		t.Errorf("Host is listed besides :authority:\n%s", got)
	}
	// The size getter agrees with the serialisation.
	if st := h.call(hostGetHeaderMapSize, mapRequestHeaders, hRetSz); st != statusOK {
		t.Fatal(st)
	}
	if n, _ := h.in.mem.ReadUint32Le(hRetSz); int(n) != len(appendPairs(nil, h.in.kvs)) {
		t.Errorf("size %d, serialised %d", n, len(appendPairs(nil, h.in.kvs)))
	}
	// num_headers counts the same pairs.
	if n := h.in.headerCount(mapRequestHeaders); int(n) != len(decode(t, h.out())) {
		t.Errorf("headerCount %d", n)
	}
}

func TestHostHeaderValue(t *testing.T) {
	h := newHarness(t, phaseRequest, "X-One: 1", "X-Multi: a", "X-Multi: b")
	tests := []struct {
		m    uint32
		key  string
		st   status
		want string
	}{
		{mapRequestHeaders, "x-one", statusOK, "1"},
		{mapRequestHeaders, "X-ONE", statusOK, "1"},
		{mapRequestHeaders, "x-multi", statusOK, "a,b"},
		{mapRequestHeaders, "host", statusOK, "api.example.com"},
		{mapRequestHeaders, ":authority", statusOK, "api.example.com"},
		{mapRequestHeaders, ":method", statusOK, "POST"},
		{mapRequestHeaders, ":path", statusOK, "/v1/users/a%20b?q=1"},
		{mapRequestHeaders, ":scheme", statusOK, "http"},
		{mapRequestHeaders, ":status", statusNotFound, ""},
		{mapRequestHeaders, "x-none", statusNotFound, ""},
		{mapRequestTrailers, "x-one", statusNotFound, ""},
		{mapResponseHeaders, "x-one", statusBadArgument, ""}, // no response yet
		{mapResponseTrailers, "x-one", statusBadArgument, ""},
		{5, "x-one", statusBadArgument, ""},
		{1 << 30, "x-one", statusBadArgument, ""},
	}
	for _, tt := range tests {
		st := h.call(hostGetHeaderMapValue, args(tt.m, h.put(tt.key), hRet, hRetSz)...)
		if st != tt.st {
			t.Errorf("map %d %q: status %d, want %d", tt.m, tt.key, st, tt.st)
			continue
		}
		if st == statusOK {
			if got := string(h.out()); got != tt.want {
				t.Errorf("map %d %q = %q, want %q", tt.m, tt.key, got, tt.want)
			}
		}
	}
}

func TestHostSetHeaders(t *testing.T) {
	h := newHarness(t, phaseRequest, "X-Old: 1", "X-Multi: a", "X-Multi: b")
	hdr := &h.rc.Request.Header
	tests := []struct {
		name string
		fn   hostFn
		args []uint64
		st   status
	}{
		{"add", hostAddHeaderMapValue, args(mapRequestHeaders, h.put("x-new", "v1")), statusOK},
		{"add again", hostAddHeaderMapValue, args(mapRequestHeaders, h.put("x-new", "v2")), statusOK},
		{"replace", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put("x-multi", "c")), statusOK},
		{"remove", hostRemoveHeaderMapValue, args(mapRequestHeaders, h.put("x-old")), statusOK},
		{"remove absent", hostRemoveHeaderMapValue, args(mapRequestHeaders, h.put("x-absent")), statusOK},
		{"bad name", hostAddHeaderMapValue, args(mapRequestHeaders, h.put("bad name", "v")), statusBadArgument},
		{"empty name", hostAddHeaderMapValue, args(mapRequestHeaders, h.put("", "v")), statusBadArgument},
		{"CRLF value", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put("x-evil", "a\r\nX-Injected: 1")), statusBadArgument},
		{"NUL value", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put("x-evil", "a\x00b")), statusBadArgument},
		{"content-length ignored", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put("content-length", "999")), statusOK},
		{"remove pseudo", hostRemoveHeaderMapValue, args(mapRequestHeaders, h.put(":path")), statusBadArgument},
		{"set scheme", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put(":scheme", "https")), statusBadArgument},
		{"unknown pseudo", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put(":protocol", "x")), statusBadArgument},
		{"set method", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put(":method", "PUT")), statusOK},
		{"bad method", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put(":method", "P T")), statusBadArgument},
		{"set authority", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put(":authority", "other.example")), statusOK},
		{"empty authority", hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put(":authority", "")), statusBadArgument},
		{"response map", hostAddHeaderMapValue, args(mapResponseHeaders, h.put("x-r", "1")), statusBadArgument},
		{"trailers", hostAddHeaderMapValue, args(mapRequestTrailers, h.put("x-t", "1")), statusBadArgument},
	}
	for _, tt := range tests {
		if st := h.call(tt.fn, tt.args...); st != tt.st {
			t.Errorf("%s: status %d, want %d", tt.name, st, tt.st)
		}
	}
	// fasthttp's Del moves the last field into the deleted one's place, so
	// repeated fields may change order once another header is removed.
	if got := hdr.PeekAll("X-New"); len(got) != 2 || string(got[0])+string(got[1]) != "v1v2" && string(got[0])+string(got[1]) != "v2v1" {
		t.Errorf("X-New = %q", got)
	}
	if got := hdr.PeekAll("X-Multi"); len(got) != 1 || string(got[0]) != "c" {
		t.Errorf("X-Multi = %q", got)
	}
	if hdr.Peek("X-Old") != nil || hdr.Peek("X-Evil") != nil || hdr.Peek("X-Injected") != nil {
		t.Errorf("removed or refused headers present:\n%s", hdr.String())
	}
	if hdr.ContentLength() != 5 {
		t.Errorf("Content-Length = %d, the guest changed the framing", hdr.ContentLength())
	}
	if string(hdr.Method()) != "PUT" || string(hdr.Host()) != "other.example" {
		t.Errorf("method %q host %q", hdr.Method(), hdr.Host())
	}
}

func TestHostSetPath(t *testing.T) {
	tests := []struct {
		path, upstream, query string
		st                    status
	}{
		{"/v2/users/7?x=%2F", "/v2/users/7", "x=%2F", statusOK},
		{"/a%20b", "/a b", "", statusOK},
		{"/", "/", "", statusOK},
		{"relative", "", "", statusBadArgument},
		{"/bad%zz", "", "", statusBadArgument},
		{"/bad%2", "", "", statusBadArgument},
		{"/nul%00", "", "", statusBadArgument},
		{"/back%5Cslash", "", "", statusBadArgument},
		{"/frag?a#b", "", "", statusBadArgument},
		{"", "", "", statusBadArgument},
	}
	for _, tt := range tests {
		h := newHarness(t, phaseRequest)
		st := h.call(hostReplaceHeaderMapValue, args(mapRequestHeaders, h.put(":path", tt.path))...)
		if st != tt.st {
			t.Errorf("%q: status %d, want %d", tt.path, st, tt.st)
			continue
		}
		if st != statusOK {
			if string(h.c.UpstreamPath()) != "/v1/users/a b" {
				t.Errorf("%q: refused, but the upstream path changed to %q", tt.path, h.c.UpstreamPath())
			}
			continue
		}
		if got := string(h.c.UpstreamPath()); got != tt.upstream {
			t.Errorf("%q: upstream path %q, want %q", tt.path, got, tt.upstream)
		}
		if got := string(h.rc.Request.URI().QueryString()); got != tt.query {
			t.Errorf("%q: query %q, want %q", tt.path, got, tt.query)
		}
		// :path reads back what was set; the router's path is unchanged.
		if st := h.call(hostGetHeaderMapValue, args(mapRequestHeaders, h.put(":path"), hRet, hRetSz)...); st != statusOK || string(h.out()) != tt.path {
			t.Errorf("%q: reads back %q (%d)", tt.path, h.out(), st)
		}
		if string(h.c.Path()) != "/v1/users/a b" {
			t.Errorf("the normalized path changed: %q", h.c.Path())
		}
	}
}

func TestHostSetHeaderMapPairs(t *testing.T) {
	h := newHarness(t, phaseRequest, "X-Old: 1", "Cookie: a=b")
	m := appendPairs(nil, []kv{
		{[]byte(":method"), []byte("DELETE")},
		{[]byte(":path"), []byte("/new?z=9")},
		{[]byte("x-a"), []byte("1")},
		{[]byte("x-a"), []byte("2")},
		{[]byte("content-length"), []byte("1")},
	})
	if st := h.call(hostSetHeaderMapPairs, args(mapRequestHeaders, h.put(string(m)))...); st != statusOK {
		t.Fatalf("status %d", st)
	}
	hdr := &h.rc.Request.Header
	if hdr.Peek("X-Old") != nil || hdr.Peek("Cookie") != nil {
		t.Errorf("old headers survived:\n%s", hdr.String())
	}
	if got := hdr.PeekAll("X-A"); len(got) != 2 {
		t.Errorf("X-A = %q", got)
	}
	if string(hdr.Method()) != "DELETE" || string(h.c.UpstreamPath()) != "/new" || string(hdr.Host()) != "api.example.com" {
		t.Errorf("method %q path %q host %q", hdr.Method(), h.c.UpstreamPath(), hdr.Host())
	}
	if hdr.ContentLength() != 5 {
		t.Errorf("content length %d", hdr.ContentLength())
	}

	// A map with one bad pair changes nothing.
	before := hdr.String()
	bad := appendPairs(nil, []kv{{[]byte("x-fine"), []byte("1")}, {[]byte("x-bad"), []byte("a\nb")}})
	if st := h.call(hostSetHeaderMapPairs, args(mapRequestHeaders, h.put(string(bad)))...); st != statusBadArgument {
		t.Errorf("bad value: status %d", st)
	}
	badPseudo := appendPairs(nil, []kv{{[]byte(":status"), []byte("200")}})
	if st := h.call(hostSetHeaderMapPairs, args(mapRequestHeaders, h.put(string(badPseudo)))...); st != statusBadArgument {
		t.Errorf(":status on a request: status %d", st)
	}
	if st := h.call(hostSetHeaderMapPairs, args(mapRequestHeaders, h.put("\x05\x00\x00\x00"))...); st != statusBadArgument {
		t.Errorf("truncated map: status %d", st)
	}
	if hdr.String() != before {
		t.Errorf("a refused map changed the headers:\n%s\nwas\n%s", hdr.String(), before)
	}
	// An empty map (zero bytes) clears everything but Host.
	if st := h.call(hostSetHeaderMapPairs, mapRequestHeaders, 0, 0); st != statusOK {
		t.Errorf("empty map: status %d", st)
	}
	if hdr.Peek("X-A") != nil {
		t.Errorf("empty map left X-A")
	}
}

func TestHostResponsePhase(t *testing.T) {
	h := newHarness(t, phaseResponse)
	upstream(h.rc, 201, "created", "X-Up: 1", "Set-Cookie: a=1", "Set-Cookie: b=2")
	if st := h.call(hostGetHeaderMapPairs, mapResponseHeaders, hRet, hRetSz); st != statusOK {
		t.Fatal(st)
	}
	got := strings.Join(decode(t, h.out()), "\n")
	for _, want := range []string{":status: 201", "x-up: 1", "set-cookie: a=1", "set-cookie: b=2"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	// num_headers counts the same pairs.
	if n := h.in.headerCount(mapResponseHeaders); int(n) != len(decode(t, h.out())) {
		t.Errorf("headerCount %d, pairs %d", n, len(decode(t, h.out())))
	}
	for _, tt := range []struct {
		name string
		fn   hostFn
		args []uint64
		st   status
	}{
		{"status", hostReplaceHeaderMapValue, args(mapResponseHeaders, h.put(":status", "202")), statusOK},
		{"bad status", hostReplaceHeaderMapValue, args(mapResponseHeaders, h.put(":status", "99")), statusBadArgument},
		{"status text", hostReplaceHeaderMapValue, args(mapResponseHeaders, h.put(":status", "2x2")), statusBadArgument},
		{"other pseudo", hostReplaceHeaderMapValue, args(mapResponseHeaders, h.put(":path", "/")), statusBadArgument},
		{"add", hostAddHeaderMapValue, args(mapResponseHeaders, h.put("x-added", "yes")), statusOK},
		{"remove", hostRemoveHeaderMapValue, args(mapResponseHeaders, h.put("x-up")), statusOK},
		{"request map is read-only", hostAddHeaderMapValue, args(mapRequestHeaders, h.put("x-late", "1")), statusBadArgument},
	} {
		if st := h.call(tt.fn, tt.args...); st != tt.st {
			t.Errorf("%s: status %d, want %d", tt.name, st, tt.st)
		}
	}
	r := &h.rc.Response
	if r.StatusCode() != 202 || string(r.Header.Peek("X-Added")) != "yes" || r.Header.Peek("X-Up") != nil {
		t.Errorf("response: %d\n%s", r.StatusCode(), r.Header.String())
	}
	// Request headers stay readable.
	if st := h.call(hostGetHeaderMapValue, args(mapRequestHeaders, h.put(":method"), hRet, hRetSz)...); st != statusOK || string(h.out()) != "POST" {
		t.Errorf("request :method in the response phase: %d %q", st, h.out())
	}

	// A local response replaces the upstream's.
	hdrs := appendPairs(nil, []kv{{[]byte("x-local"), []byte("1")}, {[]byte(":status"), []byte("ignored")}})
	st := h.call(hostSendLocalResponse, args(503, h.put("details", "down", string(hdrs)), -1)...)
	if st != statusOK {
		t.Fatalf("local response: %d", st)
	}
	if r.StatusCode() != 503 || string(r.Body()) != "down" || string(r.Header.Peek("X-Local")) != "1" || r.Header.Peek("X-Added") != nil {
		t.Errorf("after local response: %d %q\n%s", r.StatusCode(), r.Body(), r.Header.String())
	}
	if h.rs.local {
		t.Errorf("a response-phase local response marked the request answered")
	}
}

func TestHostSendLocalResponseArguments(t *testing.T) {
	h := newHarness(t, phaseRequest)
	tests := []struct {
		name string
		code int
		hdrs string
		st   status
	}{
		{"status too low", 99, "", statusBadArgument},
		{"status too high", 600, "", statusBadArgument},
		{"bad header name", 200, string(appendPairs(nil, []kv{{[]byte("a b"), []byte("1")}})), statusBadArgument},
		{"header injection", 200, string(appendPairs(nil, []kv{{[]byte("x"), []byte("1\r\nSet-Cookie: evil")}})), statusBadArgument},
		{"malformed map", 200, "\x01\x00\x00\x00", statusBadArgument},
	}
	for _, tt := range tests {
		if st := h.call(hostSendLocalResponse, args(tt.code, h.put("", "body", tt.hdrs), -1)...); st != tt.st {
			t.Errorf("%s: status %d, want %d", tt.name, st, tt.st)
		}
	}
	if h.rs.local || h.rc.Response.StatusCode() != 200 {
		t.Errorf("a refused local response was sent")
	}
	// Outside a request it is refused.
	h.in.begin(nil, nil, phaseRoot)
	if st := h.call(hostSendLocalResponse, args(200, h.put("", "", ""), -1)...); st != statusBadArgument {
		t.Errorf("root context: status %d", st)
	}
}

func TestHostBuffers(t *testing.T) {
	h := newHarness(t, phaseRequest)
	get := func(buf uint32, start, max int) (string, status) {
		st := h.call(hostGetBufferBytes, uint64(buf), uint64(start), uint64(max), hRet, hRetSz)
		if st != statusOK {
			return "", st
		}
		return string(h.out()), st
	}
	tests := []struct {
		buf        uint32
		start, max int
		want       string
		st         status
	}{
		{bufferRequestBody, 0, 100, "body!", statusOK},
		{bufferRequestBody, 1, 2, "od", statusOK},
		{bufferRequestBody, 5, 10, "", statusOK},
		{bufferRequestBody, 6, 10, "", statusBadArgument},
		{bufferRequestBody, 0, -1, "body!", statusOK}, // max is a u32
		{bufferResponseBody, 0, 10, "", statusNotFound},
		{bufferPluginConfiguration, 0, 100, `{"k":"v"}`, statusOK},
		{bufferVMConfiguration, 0, 100, "", statusOK},
		{bufferHTTPCallResponse, 0, 100, "", statusNotFound},
		{bufferForeignArguments + 1, 0, 100, "", statusBadArgument},
	}
	for _, tt := range tests {
		got, st := get(tt.buf, tt.start, tt.max)
		if st != tt.st || got != tt.want {
			t.Errorf("buffer %d [%d:+%d] = %q (%d), want %q (%d)", tt.buf, tt.start, tt.max, got, st, tt.want, tt.st)
		}
	}
	set := func(buf uint32, start, size int, data string) status {
		return h.call(hostSetBufferBytes, args(buf, start, size, h.put(data))...)
	}
	for _, tt := range []struct {
		start, size int
		data, want  string
	}{
		{0, 0, ">", ">body!"},     // prepend
		{100, 0, "<", ">body!<"},  // append
		{1, 4, "BODY", ">BODY!<"}, // replace
		{0, 100, "all", "all"},    // replace everything
		{-1, 0, "+", "all+"},      // start is a u32: past the end
		{1, 1, "", "al+"},         // delete
	} {
		if st := set(bufferRequestBody, tt.start, tt.size, tt.data); st != statusOK {
			t.Fatalf("set %d %d %q: %d", tt.start, tt.size, tt.data, st)
		}
		if got := string(h.rc.Request.Body()); got != tt.want {
			t.Errorf("after set %d %d %q: body %q, want %q", tt.start, tt.size, tt.data, got, tt.want)
		}
	}
	if st := set(bufferPluginConfiguration, 0, 0, "x"); st != statusBadArgument {
		t.Errorf("writing the plugin configuration: %d", st)
	}
	if st := set(bufferResponseBody, 0, 0, "x"); st != statusNotFound {
		t.Errorf("writing the response body in the request phase: %d", st)
	}
	if st := h.call(hostGetBufferStatus, bufferRequestBody, hRetSz, hRet); st != statusOK {
		t.Errorf("buffer status: %d", st)
	} else if n, _ := h.in.mem.ReadUint32Le(hRetSz); n != 3 {
		t.Errorf("buffer status size %d, want 3", n)
	}
	if st := h.call(hostGetConfiguration, hRet, hRetSz); st != statusOK || string(h.out()) != `{"k":"v"}` {
		t.Errorf("proxy_get_configuration: %d %q", st, h.out())
	}

	// A streamed body is not buffered: not available.
	h.rc.Request.SetBodyStream(strings.NewReader("stream"), -1)
	if _, st := get(bufferRequestBody, 0, 10); st != statusNotFound {
		t.Errorf("streamed body: %d", st)
	}
}

func TestHostProperties(t *testing.T) {
	h := newHarness(t, phaseRequest, "User-Agent: ua/1", "Referer: https://ref.example/")
	h.c.SetConsumer(&sdk.Consumer{Name: "alice"}, "key-1")
	int64le := func(v uint64) string { return string(binary.LittleEndian.AppendUint64(nil, v)) }
	tests := []struct {
		path, want string
		st         status
	}{
		{"request\x00path", "/v1/users/a%20b?q=1", statusOK},
		{"request.path", "/v1/users/a%20b?q=1", statusOK},
		{"request\x00path\x00", "/v1/users/a%20b?q=1", statusOK},
		{"request\x00url_path", "/v1/users/a%20b", statusOK},
		{"request\x00host", "api.example.com", statusOK},
		{"request\x00method", "POST", statusOK},
		{"request\x00scheme", "http", statusOK},
		{"request\x00protocol", "HTTP/1.1", statusOK},
		{"request\x00query", "q=1", statusOK},
		{"request\x00id", "req-1", statusOK},
		{"request\x00useragent", "ua/1", statusOK},
		{"request\x00referer", "https://ref.example/", statusOK},
		{"source\x00address", "192.0.2.7:4321", statusOK},
		{"source\x00port", int64le(4321), statusOK},
		{"route_name", "r", statusOK},
		{"xds\x00route_name", "r", statusOK},
		{"cluster_name", "svc", statusOK},
		{"plugin_name", "hostile", statusOK},
		{"weir\x00consumer", "alice", statusOK},
		{"response\x00code", "", statusNotFound}, // request phase
		{"request\x00nope", "", statusNotFound},
		{"", "", statusNotFound},
		{strings.Repeat("x", 200), "", statusNotFound},
	}
	for _, tt := range tests {
		st := h.call(hostGetProperty, args(h.put(tt.path), hRet, hRetSz)...)
		got := ""
		if st == statusOK {
			got = string(h.out())
		}
		if st != tt.st || got != tt.want {
			t.Errorf("property %q = %q (%d), want %q (%d)", tt.path, got, st, tt.want, tt.st)
		}
	}
	h.in.begin(h.rs, h.c, phaseResponse)
	h.rc.Response.SetStatusCode(404)
	if st := h.call(hostGetProperty, args(h.put("response\x00code"), hRet, hRetSz)...); st != statusOK || string(h.out()) != int64le(404) {
		t.Errorf("response.code: %d %q", st, h.out())
	}

	// Set, read back, overwrite.
	if st := h.call(hostSetProperty, args(h.put("my\x00prop", "v1"))...); st != statusOK {
		t.Fatal(st)
	}
	if st := h.call(hostSetProperty, args(h.put("my.prop", "v2"))...); st != statusOK {
		t.Fatal(st)
	}
	if st := h.call(hostGetProperty, args(h.put("my\x00prop"), hRet, hRetSz)...); st != statusOK || string(h.out()) != "v2" {
		t.Errorf("set property reads back %q (%d)", h.out(), st)
	}
	for i := 0; i < maxSetProperties; i++ {
		h.call(hostSetProperty, args(h.put(fmt.Sprintf("p%d", i), "v"))...)
	}
	if st := h.call(hostSetProperty, args(h.put("one.too.many", "v"))...); st != statusBadArgument {
		t.Errorf("property %d: status %d, want BAD_ARGUMENT", maxSetProperties+1, st)
	}

	// Outside a request: plugin_name only; set_property is ignored.
	h.in.begin(nil, nil, phaseRoot)
	if st := h.call(hostGetProperty, args(h.put("request\x00path"), hRet, hRetSz)...); st != statusNotFound {
		t.Errorf("request.path at the root: %d", st)
	}
	if st := h.call(hostGetProperty, args(h.put("plugin_name"), hRet, hRetSz)...); st != statusOK || string(h.out()) != "hostile" {
		t.Errorf("plugin_name at the root: %d %q", st, h.out())
	}
	if st := h.call(hostSetProperty, args(h.put("a", "b"))...); st != statusOK {
		t.Errorf("set_property at the root: %d", st)
	}
}

func TestHostRootContext(t *testing.T) {
	h := newHarness(t, phaseRoot)
	h.in.begin(nil, nil, phaseRoot)
	for _, m := range []uint32{mapRequestHeaders, mapResponseHeaders, mapRequestTrailers} {
		if st := h.call(hostGetHeaderMapPairs, uint64(m), hRet, hRetSz); st != statusBadArgument {
			t.Errorf("map %d at the root: %d", m, st)
		}
	}
	if st := h.call(hostGetBufferBytes, bufferRequestBody, 0, 10, hRet, hRetSz); st != statusNotFound {
		t.Errorf("request body at the root: %d", st)
	}
	if st := h.call(hostCloseStream, streamHTTPRequest); st != statusBadArgument {
		t.Errorf("close_stream at the root: %d", st)
	}
	if st := h.call(hostSetEffectiveContext, rootContextID); st != statusOK {
		t.Errorf("effective context root: %d", st)
	}
	if st := h.call(hostSetEffectiveContext, 2); st != statusBadArgument {
		t.Errorf("effective context 2 at the root: %d", st)
	}
}

func TestHostStreamControl(t *testing.T) {
	h := newHarness(t, phaseRequest)
	for _, tt := range []struct {
		name string
		fn   hostFn
		arg  uint64
		st   status
	}{
		{"continue request", hostContinueStream, streamHTTPRequest, statusOK},
		{"continue bad", hostContinueStream, 9, statusBadArgument},
		{"effective current", hostSetEffectiveContext, 2, statusOK},
		{"effective other", hostSetEffectiveContext, 3, statusBadArgument},
		{"close tcp", hostCloseStream, 2, statusBadArgument},
	} {
		if st := h.call(tt.fn, tt.arg); st != tt.st {
			t.Errorf("%s: %d, want %d", tt.name, st, tt.st)
		}
	}
	if st := h.call(hostCloseStream, streamHTTPRequest); st != statusOK || !h.rs.local || h.rc.Response.StatusCode() != 403 {
		t.Errorf("close request: %d local=%v status %d", st, h.rs.local, h.rc.Response.StatusCode())
	}
	h.in.begin(h.rs, h.c, phaseResponse)
	if st := h.call(hostCloseStream, streamHTTPResponse); st != statusOK || h.rc.Response.StatusCode() != 502 {
		t.Errorf("close response: %d status %d", st, h.rc.Response.StatusCode())
	}
	for _, name := range []string{"proxy_continue_request", "proxy_continue_response", "proxy_clear_route_cache", "proxy_done"} {
		if st := h.call(hostFuncByName[name].fn); st != statusOK {
			t.Errorf("%s: %d", name, st)
		}
	}
	for name, want := range map[string]status{
		"proxy_http_call":             statusBadArgument,
		"proxy_grpc_call":             statusParseFailure,
		"proxy_register_shared_queue": statusBadArgument, // an empty name
		"proxy_dequeue_shared_queue":  statusNotFound,
		"proxy_call_foreign_function": statusNotFound,
	} {
		if st := h.call(hostFuncByName[name].fn, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0); st != want {
			t.Errorf("%s: %d, want %d", name, st, want)
		}
	}
}

func TestHostMetrics(t *testing.T) {
	h := newHarness(t, phaseRoot)
	define := func(kind int, name string) (uint32, status) {
		st := h.call(hostDefineMetric, args(kind, h.put(name), hRet)...)
		id, _ := h.in.mem.ReadUint32Le(hRet)
		return id, st
	}
	c1, st := define(metricCounter, "hits.total")
	if st != statusOK || c1 == 0 {
		t.Fatalf("define counter: %d %d", c1, st)
	}
	if again, _ := define(metricCounter, "hits.total"); again != c1 {
		t.Errorf("redefining gave id %d, want %d", again, c1)
	}
	g, _ := define(metricGauge, "inflight")
	hi, _ := define(metricHistogram, "sizes")
	if _, st := define(7, "x"); st != statusBadArgument {
		t.Errorf("unknown metric type: %d", st)
	}
	get := func(id uint32) (uint64, status) {
		st := h.call(hostGetMetric, uint64(id), hRet)
		v, _ := h.in.mem.ReadUint64Le(hRet)
		return v, st
	}
	// Metrics are process-wide (and -count runs the test again): compare
	// with where they started.
	c0, _ := get(c1)
	h.call(hostRecordMetric, uint64(g), 0)
	for _, tt := range []struct {
		name string
		fn   hostFn
		id   uint32
		v    int64
		st   status
	}{
		{"inc counter", hostIncrementMetric, c1, 5, statusOK},
		{"dec counter", hostIncrementMetric, c1, -1, statusBadArgument},
		{"inc gauge", hostIncrementMetric, g, 3, statusOK},
		{"dec gauge", hostIncrementMetric, g, -1, statusOK},
		{"record histogram", hostRecordMetric, hi, 10, statusOK},
		{"inc histogram", hostIncrementMetric, hi, 1, statusBadArgument},
		{"unknown id", hostIncrementMetric, 999, 1, statusNotFound},
		{"id zero", hostRecordMetric, 0, 1, statusNotFound},
	} {
		if st := h.call(tt.fn, uint64(tt.id), uint64(tt.v)); st != tt.st {
			t.Errorf("%s: %d, want %d", tt.name, st, tt.st)
		}
	}
	if v, st := get(c1); st != statusOK || v != c0+5 {
		t.Errorf("counter = %d (%d)", v, st)
	}
	if v, st := get(g); st != statusOK || v != 2 {
		t.Errorf("gauge = %d (%d)", v, st)
	}
	if _, st := get(hi); st != statusBadArgument {
		t.Errorf("histogram value: %d", st)
	}
	if st := h.call(hostRecordMetric, uint64(g), 42); st != statusOK {
		t.Fatal(st)
	}
	if v, _ := get(g); v != 42 {
		t.Errorf("recorded gauge = %d", v)
	}
	if got := counter(`weir_wasm_guest_hits_total_total{route="r"}`).Get(); got != 0 {
		t.Errorf("suffix doubled")
	}
	if got := counter(`weir_wasm_guest_hits_total{route="r"}`).Get(); got != c0+5 {
		t.Errorf("exported counter = %d", got)
	}
}

func TestHostSharedData(t *testing.T) {
	h := newHarness(t, phaseRoot)
	getShared := func(key string) (string, uint32, status) {
		st := h.call(hostGetSharedData, args(h.put(key), hRet, hRetSz, 24)...)
		if st != statusOK {
			return "", 0, st
		}
		cas, _ := h.in.mem.ReadUint32Le(24)
		return string(h.out()), cas, st
	}
	set := func(key, value string, cas uint32) status {
		return h.call(hostSetSharedData, args(h.put(key, value), cas)...)
	}
	key := fmt.Sprintf("k-%p", h) // the store outlives the test: a fresh key
	if _, _, st := getShared(key); st != statusNotFound {
		t.Fatalf("absent key: %d", st)
	}
	if st := set(key, "v1", 0); st != statusOK {
		t.Fatal(st)
	}
	v, cas, st := getShared(key)
	if st != statusOK || v != "v1" || cas == 0 {
		t.Fatalf("get = %q cas %d (%d)", v, cas, st)
	}
	if st := set(key, "v2", cas+1); st != statusCASMismatch {
		t.Errorf("stale cas: %d", st)
	}
	if st := set(key, "v2", cas); st != statusOK {
		t.Errorf("matching cas: %d", st)
	}
	if v, _, _ := getShared(key); v != "v2" {
		t.Errorf("value %q", v)
	}
	if st := set("", "x", 0); st != statusBadArgument {
		t.Errorf("empty key: %d", st)
	}
	// Another filter of the same module file sees the same store.
	other := sharedDataFor(h.f.s.absPath)
	if b, _, st := other.get(nil, []byte(key)); st != statusOK || string(b) != "v2" {
		t.Errorf("shared across filters: %q %d", b, st)
	}
}

func TestHostLogAndTime(t *testing.T) {
	lb := &logBuf{}
	h := newHarness(t, phaseRequest)
	h.f.log = newLogger(lb)
	if st := h.call(hostLog, args(logWarn, h.put("guest says hi"))...); st != statusOK {
		t.Fatal(st)
	}
	if st := h.call(hostLog, args(9, h.put("x"))...); st != statusBadArgument {
		t.Errorf("unknown level: %d", st)
	}
	if s := lb.String(); !strings.Contains(s, `level=WARN msg="guest says hi"`) || !strings.Contains(s, "request_id=req-1") {
		t.Errorf("log:\n%s", s)
	}
	if st := h.call(hostGetLogLevel, hRet); st != statusOK {
		t.Fatal(st)
	}
	if lv, _ := h.in.mem.ReadUint32Le(hRet); lv != logDebug {
		t.Errorf("log level %d, want debug", lv)
	}
	// log_level above the gateway's: reported to the guest, and lines
	// below it are dropped.
	h.f.s.logLevel = logWarn
	if st := h.call(hostGetLogLevel, hRet); st != statusOK {
		t.Fatal(st)
	}
	if lv, _ := h.in.mem.ReadUint32Le(hRet); lv != logWarn {
		t.Errorf("log level %d with log_level warn, want warn", lv)
	}
	if st := h.call(hostLog, args(logInfo, h.put("dropped line"))...); st != statusOK {
		t.Errorf("a line below log_level: %d", st)
	}
	if st := h.call(hostLog, args(logError, h.put("kept line"))...); st != statusOK {
		t.Errorf("a line above log_level: %d", st)
	}
	if s := lb.String(); strings.Contains(s, "dropped line") || !strings.Contains(s, "kept line") {
		t.Errorf("log with log_level warn:\n%s", s)
	}
	h.f.s.logLevel = logTrace
	if st := h.call(hostGetTime, hRet); st != statusOK {
		t.Fatal(st)
	}
	if ns, _ := h.in.mem.ReadUint64Le(hRet); ns < 1_700_000_000_000_000_000 {
		t.Errorf("time %d", ns)
	}
	if st := h.call(hostSetTickPeriod, 1000); st != statusOK {
		t.Errorf("tick period: %d", st)
	}
	if h.in.tickPeriod != time.Second || h.f.tickEvery.Load() != int64(time.Second) {
		t.Errorf("tick period recorded as %v (filter %v), want 1s", h.in.tickPeriod, time.Duration(h.f.tickEvery.Load()))
	}

	// Guest stdout and stderr become log lines.
	w := &logWriter{log: h.f.log, level: 0, stream: "stdout"}
	fmt.Fprint(w, "partial ")
	fmt.Fprint(w, "line\nsecond\n")
	fmt.Fprint(w, strings.Repeat("z", maxLogLine+10)+"\n")
	if s := lb.String(); !strings.Contains(s, `msg="partial line" stream=stdout`) || !strings.Contains(s, "msg=second") || strings.Contains(s, strings.Repeat("z", maxLogLine+1)) {
		t.Errorf("stdout log:\n%.500s", s)
	}
}

// TestHostReentry: host functions called from inside the guest's
// allocator are refused.
func TestHostReentry(t *testing.T) {
	h := newHarness(t, phaseRequest)
	stack := []uint64{mapRequestHeaders, hRet, hRetSz}
	h.in.inAlloc = true
	wrap(hostGetHeaderMapPairs)(h.in, nil, stack)
	h.in.inAlloc = false
	if status(stack[0]) != statusInternalFailure {
		t.Errorf("status %d, want INTERNAL_FAILURE", stack[0])
	}
	stack = []uint64{0}
	wrap(hostOK)(context.Background(), nil, stack)
	if status(stack[0]) != statusInternalFailure {
		t.Errorf("without an instance: %d", stack[0])
	}
}

// TestHostCopyOutLimits: a value larger than the guest's memory is not
// requested from its allocator.
func TestHostCopyOutLimits(t *testing.T) {
	h := newHarness(t, phaseRequest)
	big := bytes.Repeat([]byte("x"), int(h.in.mem.Size())+1)
	if st := h.in.copyOut(big, hRet, hRetSz); st != statusInvalidMemoryAccess {
		t.Errorf("status %d", st)
	}
	if st := h.in.copyOut(nil, hRet, hRetSz); st != statusOK {
		t.Errorf("empty: %d", st)
	}
	if p, _ := h.in.mem.ReadUint32Le(hRet); p != 0 {
		t.Errorf("empty value returned pointer %d", p)
	}
}
