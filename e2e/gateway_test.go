package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestVersionAndValidate(t *testing.T) {
	out, err := exec.Command(weirBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "weir ") || !strings.Contains(string(out), "go1.") {
		t.Fatalf("version: %v %s", err, out)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{name: r, paths: ["/"], service: s}]
`), 0o600)
	if out, err := exec.Command(weirBin, "validate", "-c", good).CombinedOutput(); err != nil {
		t.Fatalf("valid config refused: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
listen: "127.0.0.1:0"
services: [{name: s, targets: [{url: "ftp://x"}], balancer: fastest}]
routes:
  - {name: r, paths: ["users"], service: nosuch}
  - {name: r2, paths: ["/x"], service: s, plugins: [{name: request_size_limit, config: {max_bytes: 0}}]}
`), 0o600)
	out, err = exec.Command(weirBin, "validate", "-c", bad).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("invalid config: want exit 1, got %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 3 {
		t.Fatalf("want every error on its own line, got:\n%s", out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, bad+": ") {
			t.Fatalf("error line does not name the file: %q", l)
		}
	}
	for _, want := range []string{"routes[0].service", "services[0]", "routes[0].paths[0]"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no error at %s in:\n%s", want, out)
		}
	}
}

const reloadCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: a
    targets: [{url: "http://UP"}]
routes:
  - {name: main, paths: ["/"], service: a}
  - {name: extra-VERSION, paths: ["/extra-VERSION"], service: a}
`

// TestReloadUnderLoad: 20 reloads (file changes and SIGHUP) while clients
// send requests without pause: no request fails, an invalid file is
// refused with the running config kept, and goroutines do not pile up.
func TestReloadUnderLoad(t *testing.T) {
	up := startEcho(t, "e1")
	cfg := func(v string) string {
		return strings.NewReplacer("UP", up, "VERSION", v).Replace(reloadCfg)
	}
	w := startWeir(t, cfg("0"))
	c := newClient(w.Addr)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://" + w.Addr + "/static")
			for n := 0; n < 200000; n++ { // bounded; stops by itself
				select {
				case <-stop:
					return
				default:
				}
				err := c.DoTimeout(req, resp, 5*time.Second)
				if err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
					if err == nil {
						firstErr.CompareAndSwap(nil, string(resp.Body()))
					} else {
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	// Baseline once the clients' keep-alive connections exist.
	time.Sleep(300 * time.Millisecond)
	goroutinesBefore := w.metric("go_goroutines")
	v := w.configVersion()
	for i := 1; i <= 20; i++ {
		w.write(cfg(string(rune('a' + i))))
		if i%2 == 0 {
			_ = w.cmd.Process.Signal(syscall.SIGHUP)
		}
		v++
		w.waitVersion(v)
		code, _, _ := get(t, c, "/extra-"+string(rune('a'+i)), nil)
		if code != 200 {
			t.Fatalf("reload %d: new route answers %d", i, code)
		}
	}
	// An invalid file is refused; the running config stays.
	w.write(strings.Replace(cfg("z"), "service: a}", "service: nosuch}", 1))
	deadline := time.Now().Add(5 * time.Second)
	for w.metric("weir_config_last_reload_successful") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if w.metric("weir_config_last_reload_successful") != 0 {
		t.Fatal("invalid config: weir_config_last_reload_successful is not 0")
	}
	if w.configVersion() != v {
		t.Fatalf("invalid config changed the version to %d", w.configVersion())
	}
	if !strings.Contains(w.Logs(), `no service named \"nosuch\"`) {
		t.Fatalf("refusal not logged with its reason:\n%s", w.Logs())
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests ran during the reloads", ok.Load())
	}
	// Old snapshots release their goroutines (health checkers, retire
	// waiters) once drained.
	var after float64
	for i := 0; i < 100; i++ {
		after = w.metric("go_goroutines")
		if after <= goroutinesBefore+4 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after > goroutinesBefore+4 {
		t.Fatalf("goroutines grew from %.0f to %.0f over 20 reloads", goroutinesBefore, after)
	}
	t.Logf("%d requests during 20 reloads, 0 failed; goroutines %.0f -> %.0f", ok.Load(), goroutinesBefore, after)
}

// TestGracefulStop: SIGTERM lets an in-flight request finish, then the
// process exits 0.
func TestGracefulStop(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {drain_timeout: 5s}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))
	// The request is on the wire before the signal: connected and sent
	// here, its answer read in the background.
	nc, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET /sleep/700 HTTP/1.1\r\nHost: e2e\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Logf("reading the in-flight answer: %v", err)
			done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		done <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("in-flight request got %d during shutdown", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request did not finish")
	}
	if !w.waitExit(6 * time.Second) {
		t.Fatal("weir did not exit after SIGTERM")
	}
	if w.exit != nil {
		t.Fatalf("exit: %v", w.exit)
	}
	if _, err := net.DialTimeout("tcp", w.Addr, 200*time.Millisecond); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestGigabyteTransfer: 1 GiB up and 1 GiB down through the gateway with
// bounded memory.
func TestGigabyteTransfer(t *testing.T) {
	if testing.Short() {
		t.Log("-short: using 256 MiB instead of 1 GiB")
	}
	size := int64(1 << 30)
	if testing.Short() {
		size = 256 << 20
	}
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {max_body_bytes: 2147483648, read_timeout: 120s, write_timeout: 120s}
services: [{name: a, targets: [{url: "http://UP"}], timeout: 120s}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))
	// Download: streamed with net/http so the client does not buffer.
	resp, err := http.Get("http://" + w.Addr + "/bytes/" + itoa(size))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	// Upload with a Content-Length, streamed from a generator.
	req, _ := http.NewRequest("POST", "http://"+w.Addr+"/upload", io.LimitReader(zeroReader{}, size))
	req.ContentLength = size
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		BodyLen int64 `json:"body_len"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if r.BodyLen != size {
		t.Fatalf("upload: upstream counted %d bytes", r.BodyLen)
	}
	peak := w.peakRSS()
	t.Logf("1 GiB transfer: %d MiB each way, weir peak RSS %.1f MiB", size>>20, float64(peak)/(1<<20))
	if peak > 128<<20 {
		t.Fatalf("peak RSS %d MiB: bodies are being buffered", peak>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
