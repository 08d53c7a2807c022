package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// watchCfg routes /vN to the echo upstream, so each version of the file is
// told apart by the route it adds; PAD is where a test makes the file big.
const watchCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services:
  - name: a
    targets: [{url: "http://UP"}]
routes:
  - {name: vVERSION, paths: ["/vVERSION"], service: a}
PAD`

func watchConfig(w *weir, up string, version int, pad string) string {
	return strings.NewReplacer("{{LISTEN}}", w.Addr, "{{ADMIN}}", w.Admin,
		"UP", up, "VERSION", strconv.Itoa(version), "PAD", pad).Replace(watchCfg)
}

// waitApplied waits at most within for the config version to reach v,
// then checks that the route of the edit's version answers.
func waitApplied(t *testing.T, w *weir, v, route int, within time.Duration, how string) {
	t.Helper()
	start := time.Now()
	for w.configVersion() < v {
		if time.Since(start) > within {
			t.Fatalf("%s: not applied within %v (config version %d, want %d)\n%s", how, within, w.configVersion(), v, w.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s: applied after %v", how, time.Since(start).Round(time.Millisecond))
	c := newClient(w.Addr)
	if code, body, _ := get(t, c, fmt.Sprintf("/v%d", route), nil); code != 200 {
		t.Fatalf("%s: GET /v%d = %d %s, want 200 from the edited config", how, route, code, body)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWatchEditInPlace: an edit that rewrites the file itself (same inode,
// as `echo > file` or an editor without backup-by-rename does) applies
// within a second.
func TestWatchEditInPlace(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "VERSION", "0", "PAD", "").Replace(watchCfg))
	v := w.configVersion()
	for i := 1; i <= 3; i++ {
		writeFile(t, w.File, watchConfig(w, up, i, ""))
		v++
		waitApplied(t, w, v, i, time.Second, fmt.Sprintf("edit %d in place", i))
	}
}

// TestWatchReplaceByRename: a new file renamed over the config (vim,
// most editors' safe save, config management tools) applies within a
// second, again and again: the watch survives the replaced inode.
func TestWatchReplaceByRename(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "VERSION", "0", "PAD", "").Replace(watchCfg))
	v := w.configVersion()
	for i := 1; i <= 3; i++ {
		tmp := filepath.Join(filepath.Dir(w.File), fmt.Sprintf(".weir.yaml.swp%d", i))
		writeFile(t, tmp, watchConfig(w, up, i, ""))
		if err := os.Rename(tmp, w.File); err != nil {
			t.Fatal(err)
		}
		v++
		waitApplied(t, w, v, i, time.Second, fmt.Sprintf("replacement %d by rename", i))
	}
}

// TestWatchConfigMapFlip: the layout a Kubernetes ConfigMap volume has.
// The config is a link to ..data/weir.yaml and ..data a link to a
// timestamped folder; an update writes a new folder and renames a new
// ..data link over the old one, then deletes the old folder. Nothing
// happens to the file's own name: only the ..data flip says it changed.
func TestWatchConfigMapFlip(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "VERSION", "0", "PAD", "").Replace(watchCfg))
	dir := filepath.Dir(w.File)
	base := filepath.Base(w.File)
	writeVersion := func(i int) string {
		name := fmt.Sprintf("..2026_12_07_%02d", i)
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, base), watchConfig(w, up, i, ""))
		return name
	}
	link := func(target, name string) {
		tmp := filepath.Join(dir, name+"_tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}

	// The file becomes the ConfigMap's link (a replacement by rename).
	v := w.configVersion()
	old := writeVersion(1)
	link(old, "..data")
	link(filepath.Join("..data", base), base)
	v++
	waitApplied(t, w, v, 1, time.Second, "file replaced by a ConfigMap link")

	for i := 2; i <= 4; i++ {
		next := writeVersion(i)
		link(next, "..data")
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
		old = next
		v++
		waitApplied(t, w, v, i, time.Second, fmt.Sprintf("..data flip %d", i))
	}
}

// rchar is the number of bytes the process has read through system calls
// (files, sockets and pipes alike), from /proc/PID/io.
func rchar(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no rchar in /proc/%d/io:\n%s", pid, b)
	return 0
}

// TestWatchIdleDoesNotReadTheFile: with a 2 MB config and nothing
// changing, the gateway reads (next to) nothing over 3 seconds; a poller
// that hashes the file every 500 ms reads it 6 times. The watch is alive
// all the same: an edit right after applies within a second.
func TestWatchIdleDoesNotReadTheFile(t *testing.T) {
	up := startEcho(t, "e1")
	var pad strings.Builder
	for pad.Len() < 2<<20 {
		pad.WriteString("# padding: a large config file, as generated route tables make them ........\n")
	}
	w := startWeir(t, strings.NewReplacer("UP", up, "VERSION", "0", "PAD", pad.String()).Replace(watchCfg))
	info, err := os.Stat(w.File)
	if err != nil {
		t.Fatal(err)
	}
	v := w.configVersion()
	time.Sleep(500 * time.Millisecond) // past start-up's reads

	pid := w.cmd.Process.Pid
	before := rchar(t, pid)
	time.Sleep(3 * time.Second)
	read := rchar(t, pid) - before
	t.Logf("read %d bytes in 3s idle with a %d-byte config", read, info.Size())
	if read >= info.Size() {
		t.Errorf("the idle gateway read %d bytes in 3s, at least the whole %d-byte config file: it reads the file without a change", read, info.Size())
	}

	writeFile(t, w.File, watchConfig(w, up, 1, pad.String()))
	waitApplied(t, w, v+1, 1, time.Second, "edit after idling")
}

// TestRegexRoutes500: 500 regex routes, each with its own literal prefix,
// through the real binary: a request for the last one reaches its service,
// and the regex index keeps config order, so an earlier regex without a
// literal prefix still wins over a later one with it.
func TestRegexRoutes500(t *testing.T) {
	last, other := startEcho(t, "last"), startEcho(t, "other")
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nadmin: {listen: %q}\n", "{{LISTEN}}", "{{ADMIN}}")
	fmt.Fprintf(&b, "services:\n  - {name: last, targets: [{url: \"http://%s\"}]}\n  - {name: other, targets: [{url: \"http://%s\"}]}\n", last, other)
	b.WriteString("routes:\n")
	b.WriteString("  - {name: anywhere, paths: [\"~/anywhere$\"], service: other}\n")
	for i := 0; i < 499; i++ {
		fmt.Fprintf(&b, "  - {name: r%d, paths: [\"~^/svc%d/v[0-9]+/items/[0-9]+$\"], service: other}\n", i, i)
	}
	b.WriteString("  - {name: r499, paths: [\"~^/svc499/v[0-9]+/items/[0-9]+$\"], service: last}\n")
	w := startWeir(t, b.String())
	c := newClient(w.Addr)
	for _, tt := range []struct {
		path   string
		status int
		server string
	}{
		{"/svc499/v2/items/42", 200, "last"},
		{"/svc498/v2/items/42", 200, "other"},
		{"/svc499/v2/items/42/anywhere", 200, "other"},
		{"/svc499/v2/items/x", 404, ""},
		{"/svc4999/v2/items/42", 404, ""},
	} {
		code, body, h := get(t, c, tt.path, nil)
		if code != tt.status || string(h.Peek("X-Echo-Server")) != tt.server {
			t.Errorf("GET %s = %d from %q, want %d from %q (%s)", tt.path, code, h.Peek("X-Echo-Server"), tt.status, tt.server, body)
		}
	}
}
