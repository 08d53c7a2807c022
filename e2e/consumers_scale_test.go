package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Holding consumers at scale (README.md, Scale). The config reader used to
// refuse any document over 524,288 values, about 52K key_auth consumers.

// scaleConsumersJSON writes a config of n key_auth consumers, one API key
// each, in the canonical JSON form (the faster of the two to read).
func scaleConsumersJSON(t testing.TB, dir, listen, adminAddr, up string, n int) string {
	t.Helper()
	return scaleConfigJSON(t, dir, listen, adminAddr, up, n, "", "")
}

// scaleConfigJSON is scaleConsumersJSON with more routes (JSON objects,
// each followed by a comma) before the key_auth one, and more consumers
// (the same) before the n generated.
func scaleConfigJSON(t testing.TB, dir, listen, adminAddr, up string, n int, routes, consumers string) string {
	t.Helper()
	var b bytes.Buffer
	b.Grow(n * 90)
	fmt.Fprintf(&b, `{"listen":[%q],"admin":{"listen":%q},`+
		`"services":[{"name":"a","targets":[{"url":"http://%s"}]}],`+
		`"routes":[%s{"name":"keyed","paths":["/keyed"],"service":"a","plugins":[{"name":"key_auth"}]}],`+
		`"consumers":[%s`, listen, adminAddr, up, routes, consumers)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"name":"c%07d","credentials":{"key_auth":[{"key":"key-%07d-abcdefghijklmnop"}]}}`, i, i)
	}
	b.WriteString("]}\n")
	file := filepath.Join(dir, "weir.json")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// scaleRun starts weir on file and waits up to limit for /status; it
// returns how long start-up took and the process.
func scaleRun(t testing.TB, file, adminAddr string, limit time.Duration) (time.Duration, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(weirBin, "run", "-c", file)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	})
	client := &http.Client{Timeout: time.Second}
	for time.Since(start) < limit {
		select {
		case err := <-exited:
			exited <- err
			out := logs.String()
			if len(out) > 2000 {
				out = out[:2000]
			}
			t.Fatalf("weir exited at start: %v\n%s", err, out)
		default:
		}
		if resp, err := client.Get("http://" + adminAddr + "/status"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(start), cmd
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("weir did not answer /status within %v", limit)
	return 0, nil
}

// vmRSS reads a process's resident set size in bytes from /proc.
func vmRSS(t testing.TB, pid int) int64 {
	t.Helper()
	return procStatus(t, pid, "VmRSS:")
}

// procCPU is the CPU time (user and system) a process has used so far,
// from /proc/PID/stat: on a shared machine a steadier figure than the
// wall time of its start-up.
func procCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("short /proc stat: %s", b)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procStatus reads a size in bytes (a kB line such as "VmRSS:") of a
// process's /proc status.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

// checkScaleConsumers loads n consumers and checks that the first and the
// last are recognised by their keys, that a wrong key is not, and that
// start-up and resident memory stay within bounds.
func checkScaleConsumers(t *testing.T, n int, maxStart, maxCPU time.Duration, maxBytesPerConsumer, maxPeak int64) {
	up := startEcho(t, "up")
	listen, adminAddr := freeAddr(t), freeAddr(t)
	file := scaleConsumersJSON(t, t.TempDir(), listen, adminAddr, up, n)
	took, cmd := scaleRun(t, file, adminAddr, maxStart)
	rss := vmRSS(t, cmd.Process.Pid)
	cpu, peak := procCPU(t, cmd.Process.Pid), procStatus(t, cmd.Process.Pid, "VmHWM:")
	t.Logf("%d consumers: up in %v (%v of CPU), VmRSS %d MiB (%d bytes per consumer), peak %d MiB", n, took.Round(10*time.Millisecond),
		cpu.Round(10*time.Millisecond), rss>>20, rss/int64(n), peak>>20)
	// CPU time and peak memory, unlike the wall time, hardly depend on
	// what else the machine runs.
	if cpu > maxCPU {
		t.Errorf("start-up took %v of CPU; want under %v", cpu, maxCPU)
	}
	if peak > maxPeak {
		t.Errorf("start-up peaked at %d MiB resident; want under %d MiB", peak>>20, maxPeak>>20)
	}

	c := newClient(listen)
	for _, i := range []int{0, n / 2, n - 1} {
		code, body, _ := get(t, c, "/keyed", map[string]string{"X-API-Key": fmt.Sprintf("key-%07d-abcdefghijklmnop", i)})
		var r struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		if want := fmt.Sprintf("c%07d", i); code != 200 || r.Headers["X-Consumer-Name"] != want {
			t.Fatalf("consumer %d's key: %d, X-Consumer-Name %q, want 200 and %q", i, code, r.Headers["X-Consumer-Name"], want)
		}
	}
	if code, body, _ := get(t, c, "/keyed", map[string]string{"X-API-Key": fmt.Sprintf("key-%07d-abcdefghijklmnop", n)}); code != 401 {
		t.Fatalf("a key no consumer holds: %d %s", code, body)
	}
	if rss > int64(n)*maxBytesPerConsumer {
		t.Fatalf("%d consumers take %d MiB resident, %d bytes each; want under %d", n, rss>>20, rss/int64(n), maxBytesPerConsumer)
	}
}

// TestConsumersScale200K: 200,000 consumers load (the old reader refused
// this file outright) within a generous CI bound, at under 2 KiB of
// resident memory each, and their keys work.
//
// CPU and peak memory: 4.2 s and 554 MiB before the config reader decoded
// JSON consumers directly (README.md, Scale), 1.3 s and 222 MiB after.
func TestConsumersScale200K(t *testing.T) {
	checkScaleConsumers(t, 200_000, 120*time.Second, 3*time.Second, 2048, 400<<20)
}

// TestConsumersScale1M is the figure README.md reports; it takes about a
// gigabyte of memory and a minute of a loaded CI machine, so it runs only
// when WEIR_SCALE_1M=1.
func TestConsumersScale1M(t *testing.T) {
	if os.Getenv("WEIR_SCALE_1M") != "1" {
		t.Skip("set WEIR_SCALE_1M=1 to load a million consumers")
	}
	// The aim is under 1 KiB: 819–866 bytes measured after credentials,
	// names and lists came from shared slabs (3.8–4.6 s of CPU at load
	// 16–25, 3.6–3.7 s to /status with SCHED_FIFO priority); 863–889
	// before that, 991–1042 for the
	// build before the key index took 8-byte digests and kept keys as views
	// of their credentials (README.md, Scale). CPU: 3.8–4.3 s on a machine
	// at load 8 (the aim is 5 s; a loaded CI machine may take twice that);
	// 25 s and 1.8 GiB before the JSON reader decoded consumers directly.
	checkScaleConsumers(t, 1_000_000, 300*time.Second, 10*time.Second, 960, 1400<<20)
}

// TestRunRefusesBadCredentials: `weir run` compiles a valid config once
// (proxy.New) instead of test-compiling it first, and a plugin's errors
// about consumers read the fast way (JSON, plain consumers) still stop
// it at start, each named with its place and the fix.
func TestRunRefusesBadCredentials(t *testing.T) {
	up := startEcho(t, "up")
	dir := t.TempDir()
	file := filepath.Join(dir, "weir.json")
	cfg := fmt.Sprintf(`{"listen": [%q], "services": [{"name": "a", "targets": [{"url": "http://%s"}]}],
 "routes": [{"name": "keyed", "paths": ["/keyed"], "service": "a", "plugins": [{"name": "key_auth", "config": {"header": "bad header"}}]}],
 "consumers": [{"name": "ann", "credentials": {"key_auth": [{"key": "k1"}]}}, {"name": "bob", "credentials": {"key_auth": [{"key": "k1"}]}}]}`,
		freeAddr(t), up)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(weirBin, "run", "-c", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("weir exited 0; want a refusal\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		t.Fatalf("weir started with a broken key_auth\n%s", out.String())
	}
	for _, want := range []string{
		`routes[0].plugins[0] (key_auth)`,
		`header: "bad header" is not a valid header name`,
		`consumers "ann" and "bob" share an API key`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out.String())
		}
	}
}

// TestAdminConsumerWritesAt100K: with 100,000 consumers loaded, the admin
// API adds, replaces and deletes one consumer without re-reading the
// others (issue 17: every write used to clone, validate and compile the
// whole config, about a second of CPU each at this size), and the
// gateway authenticates with what was written at once. A duplicate key
// is still refused with the place of the error, the consumer reads back
// masked, and the ETag moves with each write.
func TestAdminConsumerWritesAt100K(t *testing.T) {
	const n = 100_000
	up := startEcho(t, "up")
	listen, adminAddr := freeAddr(t), freeAddr(t)
	file := scaleConsumersJSON(t, t.TempDir(), listen, adminAddr, up, n)
	_, cmd := scaleRun(t, file, adminAddr, 120*time.Second)
	w := &weir{t: t, Admin: adminAddr}
	c := newClient(listen)
	consumerOf := func(key string) (int, string) {
		code, body, _ := get(t, c, "/keyed", map[string]string{"X-API-Key": key})
		var r struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		return code, r.Headers["X-Consumer-Name"]
	}

	// The first write computes the ETag of the loaded config once; the
	// ones timed after it must not touch every consumer.
	_, hdr, _ := adminRequest(t, w, "GET", "/consumers/c0000000", "", nil)
	etag := hdr.Get("ETag")
	const writes = 20
	cpu0 := procCPU(t, cmd.Process.Pid)
	for i := range writes {
		body := fmt.Sprintf(`{"name":"new%02d","groups":["g"],"credentials":{"key_auth":[{"key":"new-key-%02d"}]}}`, i, i)
		code, hdr, raw := adminRequest(t, w, "POST", "/consumers", body, nil)
		if code != 201 {
			t.Fatalf("POST /consumers: %d %s", code, raw)
		}
		if hdr.Get("ETag") == etag {
			t.Fatalf("write %d: the ETag %s did not change", i, etag)
		}
		etag = hdr.Get("ETag")
	}
	perWrite := (procCPU(t, cmd.Process.Pid) - cpu0) / writes
	t.Logf("%d consumers: %v of CPU per POST /consumers", n, perWrite)
	// Measured: a few milliseconds; a write that re-reads 100K consumers
	// takes about a second. The bound is generous for a loaded machine.
	if perWrite > 100*time.Millisecond {
		t.Errorf("POST /consumers at %d consumers took %v of CPU each; want well under 100ms", n, perWrite)
	}
	for _, i := range []int{0, writes - 1} {
		if code, name := consumerOf(fmt.Sprintf("new-key-%02d", i)); code != 200 || name != fmt.Sprintf("new%02d", i) {
			t.Fatalf("the added consumer's key: %d, X-Consumer-Name %q", code, name)
		}
	}
	if code, name := consumerOf("key-0000007-abcdefghijklmnop"); code != 200 || name != "c0000007" {
		t.Fatalf("a loaded consumer's key after the writes: %d %q", code, name)
	}
	if code, _, raw := adminRequest(t, w, "GET", "/config", "", nil); code != 200 || !strings.Contains(string(raw), `"name": "new19"`) {
		t.Fatalf("GET /config: %d, holds new19: %v", code, strings.Contains(string(raw), `"name": "new19"`))
	}
	if code, _, raw := adminRequest(t, w, "GET", "/consumers/new00", "", nil); code != 200 ||
		!strings.Contains(string(raw), `"******"`) || strings.Contains(string(raw), "new-key-00") {
		t.Fatalf("GET /consumers/new00: %d %s; want its key masked", code, raw)
	}

	// A key another consumer holds: refused with its place, and the
	// running consumers stay.
	code, _, raw := adminRequest(t, w, "POST", "/consumers", `{"name":"thief","credentials":{"key_auth":[{"key":"key-0000009-abcdefghijklmnop"}]}}`, nil)
	if code != 400 || !strings.Contains(string(raw), `consumers[100020].credentials`) || !strings.Contains(string(raw), `share an API key`) {
		t.Fatalf("POST of a duplicate key: %d %s", code, raw)
	}
	if code, name := consumerOf("key-0000009-abcdefghijklmnop"); code != 200 || name != "c0000009" {
		t.Fatalf("the refused write changed who holds the key: %d %q", code, name)
	}

	// Replace a loaded consumer's key (its masked credential list written
	// back keeps nothing: the new key replaces the old), then delete one.
	if code, _, raw := adminRequest(t, w, "PUT", "/consumers/c0000005", `{"credentials":{"key_auth":[{"key":"rotated"}]}}`, nil); code != 200 {
		t.Fatalf("PUT /consumers/c0000005: %d %s", code, raw)
	}
	if code, name := consumerOf("rotated"); code != 200 || name != "c0000005" {
		t.Fatalf("the rotated key: %d %q", code, name)
	}
	if code, _ := consumerOf("key-0000005-abcdefghijklmnop"); code != 401 {
		t.Fatalf("the replaced key still works: %d", code)
	}
	if code, _, raw := adminRequest(t, w, "DELETE", "/consumers/new03", "", nil); code != 200 {
		t.Fatalf("DELETE /consumers/new03: %d %s", code, raw)
	}
	if code, _ := consumerOf("new-key-03"); code != 401 {
		t.Fatalf("a deleted consumer's key still works: %d", code)
	}
	if got := w.status()["consumers"]; got != float64(n+writes-1) {
		t.Fatalf("/status counts %v consumers, want %d", got, n+writes-1)
	}
}
