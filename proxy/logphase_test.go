package proxy

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// gatedLog is a DeferredLogFilter whose OnLog waits for gate and reports
// what it saw.
type gatedLog struct {
	gate chan struct{}
	seen chan string
}

func (gatedLog) OnRequest(*sdk.Ctx) (sdk.Status, error) { return sdk.Continue, nil }
func (g gatedLog) OnLog(c *sdk.Ctx) {
	<-g.gate
	g.seen <- string(c.Request().Header.Peek("X-Probe")) + " " + string(c.Response().Header.Peek("X-Echo-Server"))
}
func (gatedLog) DeferLog() {}

// testGatedLog is what the plugin's New returns; each test sets its own.
var testGatedLog gatedLog

func init() {
	sdk.Register(sdk.Factory{Name: "test_gatedlog", New: func(*sdk.Build, json.RawMessage) (sdk.Filter, error) {
		return testGatedLog, nil
	}})
}

// TestDeferredLogPhase: a deferred log filter runs after the answer (the
// client has it while OnLog is still blocked), on a copy that still holds
// the request's and the response's headers; the job pins the snapshot;
// past the queue's bound jobs are dropped and counted, never waited for.
func TestDeferredLogPhase(t *testing.T) {
	defer func(n int) { logQueueLen = n }(logQueueLen)
	logQueueLen = 2
	testGatedLog = gatedLog{gate: make(chan struct{}), seen: make(chan string, 64)}
	up := startEcho(t, "e1")
	g := startGateway(t, sub(`
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "UP"}]}]
routes:
  - {name: logged, paths: ["/"], service: s, plugins: [{name: test_gatedlog}]}
`, "UP", up.URL))
	dropped := logDropped.Get()
	// The workers take the first jobs and block on the gate; two more
	// fill the queue; the rest are dropped. All are answered.
	n := logWorkers() + logQueueLen + 4
	for i := range n {
		start := time.Now()
		resp, _ := g.do("GET", "/x", func(r *fasthttp.Request) { r.Header.Set("X-Probe", "p") })
		if resp.StatusCode() != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode())
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("request %d took %v: the log phase held it", i, el)
		}
	}
	snap := g.srv.cur.Load()
	if snap.refs.Load() == 0 {
		t.Fatal("queued log jobs do not pin the snapshot")
	}
	ran := 0
	close(testGatedLog.gate)
	deadline := time.After(5 * time.Second)
	for snap.refs.Load() > 0 {
		select {
		case got := <-testGatedLog.seen:
			if got != "p e1" {
				t.Fatalf("OnLog saw %q, want the request's X-Probe and the upstream's X-Echo-Server", got)
			}
			ran++
		case <-deadline:
			t.Fatalf("log jobs still pinning the snapshot: refs %d", snap.refs.Load())
		case <-time.After(time.Millisecond):
		}
	}
	for len(testGatedLog.seen) > 0 {
		<-testGatedLog.seen
		ran++
	}
	d := int(logDropped.Get() - dropped)
	if d == 0 || ran+d != n || ran < 2+logQueueLen {
		t.Fatalf("%d log jobs ran and %d were dropped of %d, want every one either run or dropped, at least the queue's %d plus the workers' run", ran, d, n, logQueueLen)
	}
}
