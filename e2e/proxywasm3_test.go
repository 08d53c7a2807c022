package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestProxyWasmFaultsStayLocalUnderContention: a gateway with one core
// (GOMAXPROCS=1, one module instance holding every request's context)
// on a machine kept busy by CPU hogs, offered far more requests than it
// can serve, runs a well-behaved Go SDK filter with the default 20ms
// timeout: no request fails for waiting on a CPU. One request makes the
// guest loop forever: it alone fails (500), and the requests whose
// contexts lived in the instance discarded with it go on.
func TestProxyWasmFaultsStayLocalUnderContention(t *testing.T) {
	module := buildSDKFilter(t, "busy")
	up := startEcho(t, "e1")
	w := &weir{t: t, Addr: freeAddr(t), Admin: freeAddr(t), env: []string{"GOMAXPROCS=1"}}
	w.File = filepath.Join(t.TempDir(), "weir.yaml")
	w.write(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: app, targets: [{url: "http://` + up + `"}]}]
routes:
  - name: sdk
    paths: ["/"]
    service: app
    plugins:
      - name: wasm
        config: {module: ` + module + `}
`)
	w.launch(false)

	// CPU hogs: two per core of the machine, competing with the gateway.
	for i := 0; i < 4; i++ {
		hog := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if err := hog.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hog.Process.Kill(); _ = hog.Wait() })
	}

	c := &fasthttp.HostClient{Addr: w.Addr, MaxConns: 64, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var reasons []string
	fail := func(why string) {
		failed.Add(1)
		mu.Lock()
		if len(reasons) < 5 {
			reasons = append(reasons, why)
		}
		mu.Unlock()
	}
	stop := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for time.Now().Before(stop) {
				req.Reset()
				req.SetRequestURI("http://" + w.Addr + "/work")
				req.Header.Set("Test", "a")
				switch err := c.DoTimeout(req, resp, 30*time.Second); {
				case err != nil:
					fail(err.Error())
				case resp.StatusCode() != 200 || string(resp.Header.Peek("X-Busy")) != "ok":
					fail(fmt.Sprintf("%d %q x-busy=%q", resp.StatusCode(), resp.Body(), resp.Header.Peek("X-Busy")))
				default:
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	loopCode, loopBody, _ := get(t, newClient(w.Addr), "/loop", map[string]string{"X-Loop": "1"})
	wg.Wait()

	if loopCode != 500 {
		t.Errorf("the looping request: %d %s, want 500", loopCode, loopBody)
	}
	t.Logf("%d requests served, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d well-behaved requests failed; first: %s", failed.Load(), strings.Join(reasons, "; "))
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests served: the load did not run", ok.Load())
	}
	series, _, _ := scrape(t, w)
	if n := series[`weir_wasm_timeouts_total{route="sdk"}`]; n != 1 {
		t.Errorf("weir_wasm_timeouts_total = %v, want 1 (the looping request's)", n)
	}
}
