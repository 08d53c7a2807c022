package lua

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// The bench rows of issue 20 (bench/scenarios/60-lua-header.yaml,
// 62-lua-kong-header.yaml, against 00-weir.yaml) measured on the proxy's
// own fasthttp handler: the scenario's gateway config, routing, the
// plugin, forwarding over a loopback keep-alive connection to an upstream
// answering 64 bytes. What a Lua plugin costs the gateway per request is
// the difference between a row and BenchmarkHandler/weir.

// scenarioServer builds the gateway of a bench scenario file in front of a
// fasthttp upstream answering 64 bytes, shut down when b ends.
func scenarioServer(tb testing.TB, file string, bodySize int) *proxy.Server {
	tb.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "bench", "scenarios"))
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		tb.Fatal(err)
	}
	var sc struct {
		Weir yaml.Node `yaml:"weir"`
	}
	if err := yaml.Unmarshal(data, &sc); err != nil {
		tb.Fatal(err)
	}
	raw, err := yaml.Marshal(&sc.Weir)
	if err != nil {
		tb.Fatal(err)
	}
	up := staticUpstream(tb, bodySize)
	conf := strings.NewReplacer("{{LISTEN}}", "127.0.0.1:0", "{{ADMIN}}", "127.0.0.1:0", "{{BACKEND}}", up, "{{SCENARIOS}}", dir).Replace(string(raw))
	cfg, err := config.Parse(file, []byte(conf))
	if err != nil {
		tb.Fatal(err)
	}
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg, file); err != nil {
		tb.Fatal(err)
	}
	srv, err := proxy.New(cfg, file, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// staticUpstream is a loopback fasthttp server answering size bytes of
// 'x', as the bench's backend does on /static (64 B) and /static1k (1 KiB):
// the lua_body scenario's gsub("x", "y") rewrites every byte of it.
func staticUpstream(tb testing.TB, size int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	body := []byte(strings.Repeat("x", size))
	srv := &fasthttp.Server{Handler: func(rc *fasthttp.RequestCtx) { rc.SetBody(body) }}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// directCtx is a RequestCtx the handler can run on without a connection,
// with its body buffers kept as fasthttp's server keeps them.
func directCtx() *fasthttp.RequestCtx {
	var req fasthttp.Request
	rc := &fasthttp.RequestCtx{}
	rc.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	rc.Request.KeepBodyBuffer = true
	rc.Response.KeepBodyBuffer = true
	return rc
}

// serveOne runs h on a fresh GET /static on rc.
func serveOne(tb testing.TB, h fasthttp.RequestHandler, rc *fasthttp.RequestCtx) {
	rc.Request.Reset()
	rc.Response.Reset()
	rc.Request.Header.SetMethod("GET")
	rc.Request.SetRequestURI("/static")
	rc.Request.Header.SetHost("gw.example.com")
	rc.Request.Header.Set("User-Agent", "bench")
	h(rc)
	if rc.Response.StatusCode() != 200 {
		tb.Fatalf("status %d: %s", rc.Response.StatusCode(), rc.Response.Body())
	}
}

// handlerScenarios are the rows compared: the plain route and the two
// Lua header scenarios with a 64-byte answer, the plain route and the
// body_filter scenario with a 1 KiB one.
var handlerScenarios = []struct {
	name, file string
	body       int
}{
	{"weir", "00-weir.yaml", 64},
	{"lua_header", "60-lua-header.yaml", 64},
	{"lua_kong_header", "62-lua-kong-header.yaml", 64},
	{"weir_1k", "00-weir.yaml", 1024},
	{"lua_body", "61-lua-body.yaml", 1024},
}

// BenchmarkHandler is one request through the proxy's handler for each
// scenario (weir: no plugin).
func BenchmarkHandler(b *testing.B) {
	for _, sc := range handlerScenarios {
		b.Run(sc.name, func(b *testing.B) {
			h := scenarioServer(b, sc.file, sc.body).Handler()
			rc := directCtx()
			serveOne(b, h, rc)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				serveOne(b, h, rc)
			}
			// CPU time rather than wall time: on a shared machine it
			// varies much less (it includes the upstream's, the same for
			// every row).
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if body := rc.Response.Body(); len(body) != sc.body || sc.name == "lua_body" && body[0] != 'y' {
				b.Fatalf("answer %d bytes %.8q...: not the scenario's", len(body), body)
			}
		})
	}
}

// bodyAllocs is what body_filter's gsub of a 1 KiB body allocates: the
// body as a Lua string and its interface box, the result and its box
// (a literal pattern and replacement are replaced in one pass,
// gsubPlain), and the count, 1,024, one past the pre-boxed integers.
const bodyAllocs = 5

// TestHandlerAllocs: in the steady state a request through the Lua header
// scenarios allocates no more than one through the plain route; through
// the body_filter one, at most bodyAllocs more.
func TestHandlerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	var plain float64
	for _, sc := range handlerScenarios {
		t.Run(sc.name, func(t *testing.T) {
			h := scenarioServer(t, sc.file, sc.body).Handler()
			rc := directCtx()
			for range 100 {
				serveOne(t, h, rc)
			}
			got := testing.AllocsPerRun(200, func() { serveOne(t, h, rc) })
			if sc.file == "00-weir.yaml" {
				plain = got
				return
			}
			allowed := plain
			if sc.name == "lua_body" {
				allowed += bodyAllocs
			}
			if got > allowed {
				t.Errorf("%v allocs per request, the plain route %v, want at most %v", got, plain, allowed)
			}
		})
	}
}
