// Package e2e runs the real weir binary against real loopback upstreams.
// WEIR_BIN names the binary (make e2e sets it); without it TestMain builds
// one into a temporary directory.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/echo"
)

var weirBin string

func TestMain(m *testing.M) {
	weirBin = os.Getenv("WEIR_BIN")
	if weirBin == "" {
		dir, err := os.MkdirTemp("", "weir-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		weirBin = filepath.Join(dir, "weir")
		cmd := exec.Command("go", "build", "-o", weirBin, "../cmd/weir")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building weir:", err)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startEcho runs the demo upstream in-process on a loopback port.
func startEcho(t testing.TB, name string) string {
	t.Helper()
	return startEchoOn(t, name, "127.0.0.1:0")
}

// startEchoOn runs the demo upstream in-process on addr and returns the
// address it listens on.
func startEchoOn(t testing.TB, name, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := echo.Server(name)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// weir is one running gateway process.
type weir struct {
	t      testing.TB
	cmd    *exec.Cmd
	File   string
	Addr   string // proxy listener
	Admin  string // admin listener
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
	exit   error
	// nofile, when > 0, is the soft and hard open-file limit the shell
	// that execs weir sets (ulimit -n): a process may lower its hard
	// limit but never raise it, so Go's own raise at start cannot undo it.
	nofile int
	// env is added to the process environment (after GOMAXPROCS=2, so
	// it may override it).
	env []string
	// ready, when > 0, is how long launch waits for /status (default
	// 30s): a module compiled cold at start takes longer.
	ready time.Duration
}

// startWeir writes cfg (with {{LISTEN}} and {{ADMIN}} filled in) and runs
// the binary until it answers on /status.
func startWeir(t testing.TB, cfg string) *weir {
	t.Helper()
	for attempt := 1; ; attempt++ {
		w := &weir{t: t, Addr: freeAddr(t), Admin: freeAddr(t)}
		w.File = filepath.Join(t.TempDir(), "weir.yaml")
		w.write(cfg)
		err := w.start(false)
		if err == nil {
			return w
		}
		// freeAddr's ports are free when chosen, not when weir binds
		// them: another process may take one in between.
		if attempt < 3 && strings.Contains(w.Logs(), "address already in use") {
			t.Logf("attempt %d: a port chosen for weir was taken before it bound it; again with others", attempt)
			continue
		}
		t.Fatalf("%v\n%s", err, w.Logs())
	}
}

// launch runs the binary on w.File and waits until it answers on /status.
// A restarted cluster node may answer with any status while it catches up,
// so anyStatus counts every answer as up; a fresh start must answer 200 (or
// 401 when a token is set).
func (w *weir) launch(anyStatus bool) *weir {
	t := w.t
	t.Helper()
	if err := w.start(anyStatus); err != nil {
		t.Fatalf("%v\n%s", err, w.Logs())
	}
	return w
}

// start is launch, returning what went wrong.
func (w *weir) start(anyStatus bool) error {
	w.spawn(nil)
	// Generous: compiling a wasm module at start takes seconds, more on a
	// loaded machine.
	wait := 30 * time.Second
	if w.ready > 0 {
		wait = w.ready
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-w.exited:
			return fmt.Errorf("weir exited at start: %v", w.exit)
		default:
		}
		if resp, err := http.Get("http://" + w.Admin + "/status"); err == nil {
			resp.Body.Close()
			if anyStatus || resp.StatusCode == 200 || resp.StatusCode == 401 { // 401: a token is set
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("weir did not come up")
}

func (w *weir) spawn(onLine func(line string)) {
	t := w.t
	t.Helper()
	w.exited = make(chan struct{})
	w.cmd = exec.Command(weirBin, "run", "-c", w.File)
	if w.nofile > 0 {
		w.cmd = exec.Command("/bin/sh", "-c", `ulimit -n "$0" && exec "$1" run -c "$2"`,
			strconv.Itoa(w.nofile), weirBin, w.File)
	}
	w.cmd.Env = append(append(os.Environ(), "GOMAXPROCS=2"), w.env...)
	stderr, _ := w.cmd.StderrPipe()
	w.cmd.Stdout = io.Discard
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			w.mu.Lock()
			w.logs.Write(sc.Bytes())
			w.logs.WriteByte('\n')
			w.mu.Unlock()
			if onLine != nil {
				onLine(sc.Text())
			}
		}
	}()
	// Wait closes the pipe: only after every line is read (its EOF), or
	// the last lines, which say why weir stopped, would be lost.
	go func() { <-read; w.exit = w.cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		<-w.exited
		if t.Failed() {
			t.Logf("weir logs:\n%s", w.Logs())
		}
	})
}

// validateFile runs `weir validate -c file` and returns its output
// (stdout and stderr together) and exit code.
func validateFile(t testing.TB, file string) (string, int) {
	t.Helper()
	out, err := exec.Command(weirBin, "validate", "-c", file).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func (w *weir) write(cfg string) {
	cfg = strings.NewReplacer("{{LISTEN}}", w.Addr, "{{ADMIN}}", w.Admin).Replace(cfg)
	tmp := w.File + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Rename(tmp, w.File); err != nil { // atomic, as editors and config maps do
		w.t.Fatal(err)
	}
}

func (w *weir) Logs() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logs.String()
}

// status reads GET /status.
func (w *weir) status() map[string]any {
	w.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+w.Admin+"/status", nil)
	req.Header.Set("Authorization", "Bearer s3cret") // the token e2e configs use
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// adminRequest sends one admin request with the e2e token and hdr and
// answers the status, the headers and the raw body.
func adminRequest(t testing.TB, w *weir, method, path, body string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+w.Admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

func (w *weir) configVersion() int {
	v, _ := w.status()["config_version"].(float64)
	return int(v)
}

// waitVersion waits until the running config version reaches v.
func (w *weir) waitVersion(v int) {
	w.t.Helper()
	w.waitVersionWithin(v, 10*time.Second)
}

// waitVersionWithin is waitVersion with a deadline of d.
func (w *weir) waitVersionWithin(v int, d time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if w.configVersion() >= v {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.t.Fatalf("config version did not reach %d (at %d)\n%s", v, w.configVersion(), w.Logs())
}

// waitExit waits up to d for the process to exit and reports whether it
// did; w.exit then holds how.
func (w *weir) waitExit(d time.Duration) bool {
	select {
	case <-w.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// waitUntil calls ok every `every` until it holds or timeout has passed
// (checking once more at the end) and reports whether it held, so that
// each caller keeps its own failure message.
func waitUntil(timeout, every time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
}

// metric returns the value of the first /metrics line starting with
// prefix, or -1.
func (w *weir) metric(prefix string) float64 {
	v := -1.0
	w.eachMetric(prefix, func(f float64) bool { v = f; return false })
	return v
}

// metricSum is the sum of the values of every /metrics line starting
// with prefix (0 when none does), e.g. a counter over all its labels.
func (w *weir) metricSum(prefix string) float64 {
	var sum float64
	w.eachMetric(prefix, func(f float64) bool { sum += f; return true })
	return sum
}

// eachMetric calls fn with the value of each /metrics line starting with
// prefix until fn returns false.
func (w *weir) eachMetric(prefix string, fn func(float64) bool) {
	w.t.Helper()
	resp, err := http.Get("http://" + w.Admin + "/metrics")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			if !fn(v) {
				return
			}
		}
	}
}

// peakRSS is the process's peak resident memory (VmHWM) in bytes.
func (w *weir) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

func newClient(addr string) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: addr, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		MaxResponseBodySize: 64 << 20, StreamResponseBody: false}
}

func get(t testing.TB, c *fasthttp.HostClient, uri string, hdr map[string]string) (int, string, *fasthttp.ResponseHeader) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + c.Addr + uri)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if err := c.DoTimeout(req, resp, 30*time.Second); err != nil {
		t.Fatalf("GET %s: %v", uri, err)
	}
	h := &fasthttp.ResponseHeader{}
	resp.Header.CopyTo(h)
	return resp.StatusCode(), string(resp.Body()), h
}
