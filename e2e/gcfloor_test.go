package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// gcFloorConfig is a route whose Lua body filter rewrites a 1 KiB answer:
// a few KiB of garbage per request, with a live heap under 1 MB.
func gcFloorConfig(up, server string) string {
	return `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {` + server + `}
services: [{name: a, targets: [{url: "http://` + up + `"}]}]
routes:
  - name: body
    paths: ["/"]
    service: a
    plugins:
      - name: lua
        config:
          source: |
            function body_filter(body)
              return body:upper()
            end
`
}

// gcRun is what the gateway's GC did while it served enough requests to
// allocate 48 MiB: its automatic cycles, the bytes allocated, and the heap
// goal (next_gc) at the end.
type gcRun struct {
	requests, cycles int
	alloc, nextGC    float64
}

func (r gcRun) String() string {
	return fmt.Sprintf("%d requests, %d automatic GC cycles, %.0f MiB allocated, heap goal %.1f MiB",
		r.requests, r.cycles, r.alloc/(1<<20), r.nextGC/(1<<20))
}

func driveGarbage(t *testing.T, w *weir) gcRun {
	t.Helper()
	cycles := func() int {
		return int(w.metric("go_gc_duration_seconds_count ") - w.metric("go_gc_forced_count "))
	}
	c0, a0 := cycles(), w.metric("go_memstats_alloc_bytes_total ")
	c := newClient(w.Addr)
	n := 0
	for n < 200000 && w.metric("go_memstats_alloc_bytes_total ")-a0 < 48<<20 {
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + w.Addr + "/x")
				for i := 0; i < 250; i++ {
					if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Body()) != 1024 {
						t.Errorf("GET /x: %v %d, %d bytes", err, resp.StatusCode(), len(resp.Body()))
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		n += 1000
	}
	return gcRun{requests: n, cycles: cycles() - c0,
		alloc: w.metric("go_memstats_alloc_bytes_total ") - a0, nextGC: w.metric("go_memstats_next_gc_bytes ")}
}

// TestGCHeapFloor: with a live heap under 1 MB the gateway lets the heap
// grow to server.gc_heap_floor (64 MiB by default) before it collects, so
// 48 MiB of garbage from a Lua body filter costs at most a cycle or two
// instead of one every 4 MiB; a reload to 0 turns the floor off at once,
// PUT /config on the admin API turns it on again;
// GOGC in the environment turns it off, and the log says so.
func TestGCHeapFloor(t *testing.T) {
	up := startFastUpstream(t)
	start := func(server string, env ...string) *weir {
		w := &weir{t: t, Addr: freeAddr(t), Admin: freeAddr(t), env: env}
		w.File = filepath.Join(t.TempDir(), "weir.yaml")
		w.write(gcFloorConfig(up, server))
		return w.launch(false)
	}

	w := start("", "GOGC=", "GOMEMLIMIT=")
	r := driveGarbage(t, w)
	t.Logf("default floor: %v", r)
	if r.nextGC < 60<<20 || r.cycles > 2 {
		t.Errorf("default server.gc_heap_floor: %v; want a heap goal of at least 60 MiB and at most 2 cycles", r)
	}

	// A reload to 0 turns the floor off: Go's own 4 MiB minimum.
	v := w.configVersion()
	w.write(gcFloorConfig(up, "gc_heap_floor: 0"))
	w.waitVersion(v + 1)
	r = driveGarbage(t, w)
	t.Logf("gc_heap_floor 0 after a reload: %v", r)
	if r.nextGC > 16<<20 || r.cycles < 4 {
		t.Errorf("gc_heap_floor reloaded to 0: %v; want Go's own goal (under 16 MiB), a cycle every few MiB", r)
	}

	// The admin API applies it too: PUT /config with the floor back.
	code, cfg := adminRaw(t, w, "GET", "/config", "")
	zero := regexp.MustCompile(`"gc_heap_floor":\s*0\b`)
	if code != 200 || !zero.Match(cfg) {
		t.Fatalf("GET /config: %d, no gc_heap_floor 0 in %s", code, cfg)
	}
	back := zero.ReplaceAllString(string(cfg), `"gc_heap_floor": 67108864`)
	if code, body := adminRaw(t, w, "PUT", "/config", back); code != 200 {
		t.Fatalf("PUT /config: %d %s", code, body)
	}
	r = driveGarbage(t, w)
	t.Logf("gc_heap_floor 64 MiB through PUT /config: %v", r)
	if r.nextGC < 60<<20 || r.cycles > 2 {
		t.Errorf("gc_heap_floor put back through the admin API: %v; want a heap goal of at least 60 MiB and at most 2 cycles", r)
	}

	w = start("gc_heap_floor: 33554432", "GOGC=100", "GOMEMLIMIT=")
	if !strings.Contains(w.Logs(), "server.gc_heap_floor is off: GOGC is set in the environment") {
		t.Errorf("GOGC=100 in the environment: the log does not say the floor is off:\n%s", w.Logs())
	}
	r = driveGarbage(t, w)
	t.Logf("GOGC=100: %v", r)
	if r.nextGC > 16<<20 || r.cycles < 4 {
		t.Errorf("GOGC=100 in the environment: %v; want Go's own goal (under 16 MiB), a cycle every few MiB", r)
	}
}

// startFastUpstream answers every request with 1 KiB.
func startFastUpstream(t *testing.T) string {
	body := []byte(strings.Repeat("x", 1024))
	return serveFast(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) })
}
