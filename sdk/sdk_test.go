package sdk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

func TestWriteError(t *testing.T) {
	var rc fasthttp.RequestCtx
	WriteError(&rc, 429, `rate "limit" <exceeded>`, []byte("req-1"))
	var got struct {
		Status    int    `json:"status"`
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(rc.Response.Body(), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, rc.Response.Body())
	}
	if got.Status != 429 || got.Error != `rate "limit" <exceeded>` || got.RequestID != "req-1" {
		t.Fatalf("%+v", got)
	}
	if rc.Response.StatusCode() != 429 || string(rc.Response.Header.ContentType()) != "application/json" {
		t.Fatalf("status %d, type %s", rc.Response.StatusCode(), rc.Response.Header.ContentType())
	}
	if bytes.Contains(rc.Response.Body(), []byte("<")) {
		t.Fatal("< not escaped")
	}
	// A second error replaces the first body.
	WriteError(&rc, 404, "no route", nil)
	if !bytes.HasPrefix(rc.Response.Body(), []byte(`{"status":404`)) {
		t.Fatalf("body %s", rc.Response.Body())
	}
}

// TestWriteErrorReplacesAnUpstreamAnswer: an error written over an answer
// read from an upstream keeps none of its header fields nor its reason
// phrase; Connection: close, about the client's connection, stays.
func TestWriteErrorReplacesAnUpstreamAnswer(t *testing.T) {
	var rc fasthttp.RequestCtx
	up := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream: 1\r\nSet-Cookie: a=b\r\n\r\nhi"
	if err := rc.Response.Read(bufio.NewReader(strings.NewReader(up))); err != nil {
		t.Fatal(err)
	}
	rc.SetConnectionClose()
	WriteError(&rc, 502, "upstream failed", []byte("req-1"))
	out := rc.Response.String()
	if !strings.HasPrefix(out, "HTTP/1.1 502 Bad Gateway\r\n") {
		t.Fatalf("status line of %q", out)
	}
	if strings.Contains(out, "X-Upstream") || strings.Contains(out, "Set-Cookie") {
		t.Fatalf("the upstream's fields survived: %q", out)
	}
	if !rc.Response.ConnectionClose() {
		t.Fatal("Connection: close was dropped")
	}
}

func TestClientBodyStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{ErrBodyTooLarge, 413},
		{fasthttp.ErrBodyTooLarge, 413},
		{fmt.Errorf("reading: %w", os.ErrDeadlineExceeded), 408},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, 408},
		{fasthttp.ErrBrokenChunk{}, 400},
		{io.ErrUnexpectedEOF, 400},
	} {
		if got, msg := ClientBodyStatus(tc.err); got != tc.want || msg == "" {
			t.Errorf("%v: %d %q, want %d", tc.err, got, msg, tc.want)
		}
	}
}

func TestWriteErrorZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	var rc fasthttp.RequestCtx
	id := []byte("0123456789abcdef0123456789abcdef0123")
	WriteError(&rc, 401, "invalid API key", id)
	if n := testing.AllocsPerRun(100, func() { WriteError(&rc, 401, "invalid API key", id) }); n != 0 {
		t.Fatalf("%.1f allocs", n)
	}
}

func TestAppendJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":    `"plain"`,
		"a\"b\\c":  `"a\"b\\c"`,
		"\n\t\x01": `"\n\t\u0001"`,
		"<&>":      `"\u003c\u0026\u003e"`,
	} {
		if got := string(AppendJSONString(nil, in)); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(AppendJSONString(nil, in), &back); err != nil || back != in {
			t.Errorf("%q does not round-trip: %q %v", in, back, err)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("x\"\\\x00\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		var back string
		if err := json.Unmarshal(AppendJSONString(nil, s), &back); err != nil {
			t.Fatalf("invalid JSON for %q: %v", s, err)
		}
		if strings.ToValidUTF8(s, "\uFFFD") == s && back != s {
			t.Fatalf("%q -> %q", s, back)
		}
	})
}

func TestCtxParamsValuesHeaders(t *testing.T) {
	var rc fasthttp.RequestCtx
	c := AcquireCtx(&rc)
	c.AddParam("id", []byte("7"))
	if string(c.Param("id")) != "7" || c.Param("nope") != nil || len(c.Params()) != 1 {
		t.Fatal("params")
	}
	key := new(int)
	c.SetValue(key, "v")
	if c.Value(key) != "v" || c.Value(new(int)) != nil {
		t.Fatal("values")
	}
	c.SetResponseHeader("X-A", []byte("1"))
	c.SetResponseHeaderInt("X-B", 42)
	rc.Response.Header.Set("X-A", "upstream")
	c.ApplyResponseHeaders()
	if string(rc.Response.Header.Peek("X-A")) != "1" || string(rc.Response.Header.Peek("X-B")) != "42" {
		t.Fatal("deferred headers")
	}
	c.SetPath([]byte("/a/b"))
	if string(c.UpstreamPath()) != "/a/b" {
		t.Fatal("upstream path defaults to the path")
	}
	c.SetUpstreamPath([]byte("/b"))
	if string(c.UpstreamPath()) != "/b" {
		t.Fatal("upstream path")
	}
	cons := &Consumer{Name: "alice", Groups: []string{"gold"}}
	c.SetConsumer(cons, "k1")
	c.AddScope("read")
	if c.Consumer() != cons || c.Credential() != "k1" || !c.HasScope("read") || !cons.InGroup("gold") {
		t.Fatal("identity")
	}
	ReleaseCtx(c)
	c = AcquireCtx(&rc)
	if c.Consumer() != nil || len(c.Params()) != 0 || c.Value(key) != nil || len(c.Scopes()) != 0 || c.Stopped() {
		t.Fatal("a pooled Ctx kept state across requests")
	}
	ReleaseCtx(c)
}

func TestDecodeConfig(t *testing.T) {
	var v struct {
		Rate int `json:"rate"`
	}
	if err := DecodeConfig(nil, &v); err != nil {
		t.Fatal(err)
	}
	if err := DecodeConfig([]byte("null"), &v); err != nil {
		t.Fatal(err)
	}
	if err := DecodeConfig([]byte(`{"rate": 5}`), &v); err != nil || v.Rate != 5 {
		t.Fatal(err)
	}
	err := DecodeConfig([]byte(`{"rat": 5}`), &v)
	if err == nil || !strings.Contains(err.Error(), `unknown field "rat"`) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := DecodeConfig([]byte(`{"rate": "x"}`), &v); err == nil {
		t.Fatal("type error accepted")
	}
}

// TestDecodeConfigEveryError: every wrong key is reported in one run, in
// key order, nested ones with their path, and good keys are still set.
func TestDecodeConfigEveryError(t *testing.T) {
	var v struct {
		Rate   float64 `json:"rate"`
		Per    string  `json:"per"`
		Burst  int     `json:"burst"`
		Hybrid *struct {
			Batch int `json:"batch"`
		} `json:"hybrid"`
		Limits []struct {
			Rate float64 `json:"rate"`
		} `json:"limits"`
	}
	err := DecodeConfig([]byte(`{"rate":"x","per":"1s","burst":"y","brust":1,"hybrid":{"batch":"z","bach":1},"limits":[{"rate":1},{"rate":"w"}]}`), &v)
	want := "rate: expected float64, got string\n" +
		"burst: expected int, got string\n" +
		"unknown field \"brust\"\n" +
		"hybrid.batch: expected int, got string\n" +
		"unknown field \"hybrid.bach\"\n" +
		"limits[1].rate: expected float64, got string"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got: %v\nwant: %s", err, want)
	}
	if v.Per != "1s" {
		t.Fatalf("a good key next to bad ones is not decoded: per = %q", v.Per)
	}
}

func TestRegistry(t *testing.T) {
	// The registry is global: leave it as found, so -count=N can run again.
	t.Cleanup(func() {
		registryMu.Lock()
		delete(registry, "sdk_test_plugin")
		registryMu.Unlock()
	})
	Register(Factory{Name: "sdk_test_plugin", New: func(*Build, json.RawMessage) (Filter, error) { return nil, errors.New("x") }})
	if _, ok := Lookup("sdk_test_plugin"); !ok {
		t.Fatal("lookup")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate registration did not panic")
		}
	}()
	Register(Factory{Name: "sdk_test_plugin", New: func(*Build, json.RawMessage) (Filter, error) { return nil, nil }})
}

func TestHistogramLeBuckets(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); make unit runs this test")
	}
	// Histograms are global: a fresh series per run keeps -count=N honest.
	quantileRuns++
	route := fmt.Sprintf("a%d", quantileRuns)
	h := GetOrCreateHistogram(`weir_test_seconds{route="` + route + `"}`)
	if GetOrCreateHistogram(`weir_test_seconds{route="`+route+`"}`) != h {
		t.Fatal("not the same handle")
	}
	h.Update(0.0002)
	h.Update(0.003)
	h.Update(100)
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	out := b.String()
	for _, want := range []string{
		"# TYPE weir_test_seconds histogram",
		`weir_test_seconds_bucket{route="` + route + `",le="0.00025"} 1`,
		`weir_test_seconds_bucket{route="` + route + `",le="0.005"} 2`,
		`weir_test_seconds_bucket{route="` + route + `",le="30"} 2`,
		`weir_test_seconds_bucket{route="` + route + `",le="+Inf"} 3`,
		`weir_test_seconds_count{route="` + route + `"} 3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { h.Update(0.001) }); n != 0 {
		t.Fatalf("Update allocates %.1f", n)
	}
}

// TestCtxHost: Host is the client's host as the proxy set it, whatever
// happens to the Host field afterwards; on a bare Ctx, the request's.
func TestCtxHost(t *testing.T) {
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/x")
	rc.Request.Header.SetHost("client.example")
	c := AcquireCtx(&rc)
	defer ReleaseCtx(c)
	if string(c.Host()) != "client.example" {
		t.Fatalf("bare Ctx: %q", c.Host())
	}
	c.SetHost(rc.Host())
	rc.Request.Header.SetHost("target.example")
	rc.Request.SetRequestURI("/y") // the URI is parsed again from the new Host
	if string(c.Host()) != "client.example" {
		t.Fatalf("after the Host field changed: %q, want the client's", c.Host())
	}
	c.Reset()
	c.rc = &rc
	if string(c.Host()) != "target.example" {
		t.Fatalf("after Reset: %q, want the request's", c.Host())
	}
}

var ctxSink *Ctx

// TestCtxSizeClass: a Ctx lives as long as its request, so its size class
// is memory per request in flight. The runtime rounds 1,537–1,792 bytes
// up to 1,792; the Ctx stays within 1,536 (its flags are grouped at the
// end of the struct for that).
func TestCtxSizeClass(t *testing.T) {
	const n = 10000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		ctxSink = new(Ctx)
	}
	runtime.ReadMemStats(&after)
	if got := (after.TotalAlloc - before.TotalAlloc) / n; got > 1536 {
		t.Fatalf("a Ctx takes %d bytes on the heap (struct %d), want at most 1536", got, unsafe.Sizeof(Ctx{}))
	}
}
