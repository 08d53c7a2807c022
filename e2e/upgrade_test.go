package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startSuccessor runs a second weir binary on old's config file — the same
// listen and admin addresses — as README.md's zero-downtime upgrade says,
// and waits until its proxy listener is bound. /status cannot tell the two
// processes apart (they share the admin address), so readiness is the
// successor's own "weir listening" log line.
func startSuccessor(t *testing.T, old *weir) *weir {
	t.Helper()
	w := &weir{t: t, File: old.File, Addr: old.Addr, Admin: old.Admin}
	listening := make(chan struct{})
	once := sync.Once{}
	w.spawn(func(line string) {
		if strings.Contains(line, `"weir listening"`) {
			once.Do(func() { close(listening) })
		}
	})
	select {
	case <-listening:
		return w
	case <-w.exited:
		t.Fatalf("the successor exited at start: %v\n%s", w.exit, w.Logs())
	case <-time.After(10 * time.Second):
		t.Fatalf("the successor did not come up\n%s", w.Logs())
	}
	return nil
}

// loadStats are what one kind of client of TestZeroDowntimeUpgrade saw.
type loadStats struct {
	sent, ok, failed, reconnects atomic.Int64
	afterSwitch                  atomic.Int64 // answered after the old process exited
	switched                     *atomic.Bool
	sigterm                      *atomic.Int64 // when the old process was told to stop (UnixNano)
	mu                           sync.Mutex
	errs                         []string
}

func (s *loadStats) fail(format string, args ...any) {
	s.failed.Add(1)
	s.mu.Lock()
	if len(s.errs) < 10 {
		when := "before SIGTERM"
		if at := s.sigterm.Load(); at != 0 {
			when = fmt.Sprintf("%v after SIGTERM", time.Since(time.Unix(0, at)).Round(time.Millisecond))
		}
		s.errs = append(s.errs, fmt.Sprintf(format, args...)+" ("+when+")")
	}
	s.mu.Unlock()
}

func (s *loadStats) answered() {
	s.ok.Add(1)
	if s.switched.Load() {
		s.afterSwitch.Add(1)
	}
}

// keepAliveClient sends requests one after another on one connection,
// opening a new one only when an answer says Connection: close. Nothing is
// retried: an error is a lost request.
func keepAliveClient(addr string, id int, stop *atomic.Bool, st *loadStats) {
	var nc net.Conn
	var br *bufio.Reader
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	for n := 0; !stop.Load(); n++ {
		st.sent.Add(1)
		if nc == nil {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				st.fail("keep-alive %d: connect: %v", id, err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			nc, br = c, bufio.NewReader(c)
		}
		_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
		status, closing, err := roundTrip(nc, br, fmt.Sprintf("GET /ka/%d/%d HTTP/1.1\r\nHost: e2e\r\n\r\n", id, n))
		switch {
		case err != nil:
			st.fail("keep-alive %d, request %d: %v", id, n, err)
		case status != 200:
			st.fail("keep-alive %d, request %d: status %d", id, n, status)
		default:
			st.answered()
		}
		if err != nil || closing {
			nc.Close()
			nc = nil
			if err == nil {
				st.reconnects.Add(1)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// newConnClient opens a connection per request.
func newConnClient(addr string, id int, stop *atomic.Bool, st *loadStats) {
	for n := 0; !stop.Load(); n++ {
		st.sent.Add(1)
		nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			st.fail("new-connection %d: connect: %v", id, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
		status, _, err := roundTrip(nc, bufio.NewReader(nc),
			fmt.Sprintf("GET /nc/%d/%d HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n", id, n))
		nc.Close()
		switch {
		case err != nil:
			st.fail("new-connection %d, request %d: %v", id, n, err)
		case status != 200:
			st.fail("new-connection %d, request %d: status %d", id, n, status)
		default:
			st.answered()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// roundTrip writes req and reads the whole answer.
func roundTrip(nc net.Conn, br *bufio.Reader, req string) (status int, closing bool, err error) {
	resp, _, err := connExchange(nc, br, req)
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, resp.Close, nil
}

// TestZeroDowntimeUpgrade runs README.md's upgrade for real: under steady
// load from keep-alive clients and new-connection clients, a second weir
// process of the built binary is started on the same config file (same
// proxy and admin addresses), then the first one gets SIGTERM. Not one
// request of either kind may fail, and the new process must be serving
// afterwards. The config leaves server.drain_grace at its default, so the
// procedure is the documented one with no tuning.
func TestZeroDowntimeUpgrade(t *testing.T) {
	up := startEcho(t, "e1")
	old := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {drain_timeout: 5s}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))

	var switched atomic.Bool
	var sigterm atomic.Int64
	ka := &loadStats{switched: &switched, sigterm: &sigterm}
	nc := &loadStats{switched: &switched, sigterm: &sigterm}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); keepAliveClient(old.Addr, i, &stop, ka) }()
		go func() { defer wg.Done(); newConnClient(old.Addr, i, &stop, nc) }()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	time.Sleep(time.Second)
	successor := startSuccessor(t, old)
	time.Sleep(time.Second) // both processes accept
	kaBefore, ncBefore := ka.ok.Load(), nc.ok.Load()
	sigterm.Store(time.Now().UnixNano())
	_ = old.cmd.Process.Signal(syscall.SIGTERM)
	if !old.waitExit(10 * time.Second) {
		t.Fatal("the old process did not exit after SIGTERM")
	}
	if old.exit != nil {
		t.Errorf("the old process exited with %v", old.exit)
	}
	switched.Store(true)
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	for _, k := range []struct {
		name   string
		st     *loadStats
		before int64
	}{{"keep-alive", ka, kaBefore}, {"new-connection", nc, ncBefore}} {
		t.Logf("%s clients: %d requests sent, %d answered (%d before SIGTERM, %d after the old process exited), %d reconnects on Connection: close, %d failed",
			k.name, k.st.sent.Load(), k.st.ok.Load(), k.before, k.st.afterSwitch.Load(), k.st.reconnects.Load(), k.st.failed.Load())
		if n := k.st.failed.Load(); n > 0 {
			t.Errorf("%d %s requests failed during the upgrade; the first: %s", n, k.name, strings.Join(k.st.errs, "; "))
		}
		if k.st.afterSwitch.Load() == 0 {
			t.Errorf("no %s request was answered after the old process exited", k.name)
		}
		if k.st.ok.Load()+k.st.failed.Load() != k.st.sent.Load() {
			t.Errorf("%s: %d sent but %d answered and %d failed", k.name, k.st.sent.Load(), k.st.ok.Load(), k.st.failed.Load())
		}
	}
	if ka.reconnects.Load() == 0 {
		t.Error("no keep-alive client was told Connection: close: the old process did not hand its connections over")
	}
	select {
	case <-successor.exited:
		t.Fatalf("the successor exited: %v", successor.exit)
	default:
	}
	if !strings.Contains(old.Logs(), `"stopped"`) {
		t.Errorf("the old process did not log its stop:\n%s", old.Logs())
	}
}

// TestDrainTimeoutCutsCleanly: a request still running when drain_timeout
// is up is cut — its connection closed with no partial answer — the
// process exits 0 on time, and the log says how many were cut.
func TestDrainTimeoutCutsCleanly(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {drain_timeout: 500ms, drain_grace: 100ms}
services: [{name: a, targets: [{url: "http://UP"}], timeout: 10s}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))
	var conns []net.Conn
	for range 2 {
		nc, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := io.WriteString(nc, "GET /sleep/2000 HTTP/1.1\r\nHost: e2e\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	time.Sleep(200 * time.Millisecond) // both are in flight
	start := time.Now()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	for i, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(nc)
		if len(b) > 0 || err != nil {
			t.Errorf("request %d: got %q, %v; want the connection closed with no answer", i, b, err)
		}
	}
	if !w.waitExit(3 * time.Second) {
		t.Fatal("weir did not exit after drain_timeout")
	}
	if w.exit != nil {
		t.Fatalf("exit: %v", w.exit)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopping took %v with drain_timeout 500ms", took)
	}
	if logs := w.Logs(); !strings.Contains(logs, `"drain_timeout passed: in-flight requests cut, their connections closed","requests":2,"connections":2`) {
		t.Errorf("no log line counting the 2 cut requests:\n%s", logs)
	}
}

// TestDrainGrace: after SIGTERM, a keep-alive connection that sends its
// next request within server.drain_grace gets it answered, with
// Connection: close; one that stays idle is closed once the grace is over,
// and the process exits 0.
func TestDrainGrace(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {drain_timeout: 5s, drain_grace: 800ms}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))
	open := func() (net.Conn, *bufio.Reader) {
		nc, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(nc)
		status, closing, err := roundTrip(nc, br, "GET /first HTTP/1.1\r\nHost: e2e\r\n\r\n")
		if err != nil || status != 200 || closing {
			t.Fatalf("first request: %d, close %v, %v", status, closing, err)
		}
		return nc, br
	}
	busy, busyR := open()
	_, idleR := open()

	start := time.Now()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	status, closing, err := roundTrip(busy, busyR, "GET /second HTTP/1.1\r\nHost: e2e\r\n\r\n")
	if err != nil || status != 200 || !closing {
		t.Fatalf("request 300ms after SIGTERM on a keep-alive connection: %d, Connection: close %v, %v; want 200 with Connection: close", status, closing, err)
	}
	if b, err := io.ReadAll(busyR); len(b) > 0 || err != nil {
		t.Errorf("after the Connection: close answer: %q, %v; want the end of the connection", b, err)
	}

	if b, err := io.ReadAll(idleR); len(b) > 0 || err != nil {
		t.Errorf("idle connection: %q, %v; want it closed", b, err)
	}
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("the idle connection was closed %v after SIGTERM, before drain_grace (800ms)", took)
	}
	if !w.waitExit(3 * time.Second) {
		t.Fatal("weir did not exit after the grace")
	}
	if w.exit != nil {
		t.Fatalf("exit: %v", w.exit)
	}
}
