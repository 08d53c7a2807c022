package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tail := " S 1 100 100 0 -1 4194560 500 0 0 0 %s %s 0 0 20 0 8 0 1000 1000000 500 18446744073709551615"
	tests := []struct {
		name  string
		in    string
		ppid  int
		ticks cpuTicks
		err   string
	}{
		{name: "plain", in: "42 (weir)" + strings.Replace(strings.Replace(tail, "%s", "150", 1), "%s", "25", 1), ppid: 1, ticks: 175},
		{name: "spaces and parens in comm", in: "42 (a b) (c))" + strings.Replace(strings.Replace(tail, "%s", "7", 1), "%s", "3", 1), ppid: 1, ticks: 10},
		{name: "no paren", in: "42 weir S 1", err: "parse /proc stat: no ')' after the command name"},
		{name: "short", in: "42 (weir) S 1 2 3", err: "parse /proc stat: 4 fields after the command name, want at least 13"},
		{name: "bad ppid", in: "42 (weir) S x 100 100 0 -1 4194560 500 0 0 0 1 2", err: `parse /proc stat: ppid "x"`},
		{name: "bad utime", in: "42 (weir) S 1 100 100 0 -1 4194560 500 0 0 0 u 2", err: `parse /proc stat: utime "u"`},
		{name: "bad stime", in: "42 (weir) S 1 100 100 0 -1 4194560 500 0 0 0 1 s", err: `parse /proc stat: stime "s"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ppid, ticks, err := parseProcStat([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ppid != tt.ppid || ticks != tt.ticks {
				t.Errorf("got ppid %d ticks %d, want %d %d", ppid, ticks, tt.ppid, tt.ticks)
			}
		})
	}
}

// FuzzParseProcStat: /proc/PID/stat holds a command name any program can
// choose; parsing must never panic on it.
func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 500 0 0 0 10 20 0 0 20 0 1 0 5"))
	f.Add([]byte("1 ()) S"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseProcStat(b)
	})
}

func TestTreeCPUCountsChildren(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	dir := t.TempDir()
	// A shell that forks a busy child: the child's CPU must count for
	// the shell (as nginx's worker counts for its master).
	p, err := startProc(pinner{}, "busy", "", dir, nil, "sh", "-c", "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5' & wait")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tree, err := treeCPU([]int{p.pid()})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
		if err != nil {
			t.Fatal(err)
		}
		_, own, err := parseProcStat(b)
		if err != nil {
			t.Fatal(err)
		}
		if tree >= 5 && tree > own {
			break // the child's ticks are counted, beyond the parent's own
		}
		if time.Now().After(deadline) {
			t.Fatalf("the busy child's CPU time never showed up in its parent's tree (tree %d, own %d)", tree, own)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := treeCPU([]int{1 << 30}); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("missing pid: err = %v", err)
	}
}

func TestProcStopKillsGroupAndReportsExit(t *testing.T) {
	dir := t.TempDir()
	p, err := startProc(pinner{}, "sleeper", "", dir, nil, "sh", "-c", "sleep 30 & sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	if p.exited() {
		t.Fatal("exited at once")
	}
	start := time.Now()
	p.stop()
	if !p.exited() {
		t.Fatal("still running after stop")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s", d)
	}
	// waitReady on a dead process says so instead of waiting out its
	// timeout.
	if err := p.waitReady("127.0.0.1:1", 5*time.Second); err == nil || !strings.Contains(err.Error(), "exited before listening") {
		t.Errorf("waitReady = %v", err)
	}
}

func TestPinnerWrap(t *testing.T) {
	argv := []string{"nginx", "-g", "daemon off;"}
	if got := (pinner{}).wrap("0", argv); strings.Join(got, " ") != "nginx -g daemon off;" {
		t.Errorf("no taskset: %v", got)
	}
	if got := (pinner{taskset: "/usr/bin/taskset"}).wrap("1", argv); strings.Join(got, " ") != "/usr/bin/taskset -c 1 nginx -g daemon off;" {
		t.Errorf("taskset: %v", got)
	}
	if got := (pinner{taskset: "/usr/bin/taskset"}).wrap("", argv); len(got) != 3 {
		t.Errorf("no cpus: %v", got)
	}
	rt := pinner{taskset: "/usr/bin/taskset", chrt: "/usr/bin/chrt"}
	if got := rt.wrap("1", argv); strings.Join(got, " ") != "/usr/bin/taskset -c 1 nginx -g daemon off;" {
		t.Errorf("real time only when asked: %v", got)
	}
	if got := rt.realtime().wrap("1", argv); strings.Join(got, " ") != "/usr/bin/chrt -f 1 /usr/bin/taskset -c 1 nginx -g daemon off;" {
		t.Errorf("real time: %v", got)
	}
	if got := (pinner{taskset: "/usr/bin/taskset"}).realtime().wrap("1", argv); got[0] != "/usr/bin/taskset" {
		t.Errorf("real time without chrt: %v", got)
	}
}

func TestPortAllocatorNeverRepeats(t *testing.T) {
	var a portAllocator
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		p, err := a.next()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || !strings.HasPrefix(p, "127.0.0.1:") || strings.HasSuffix(p, ":6379") {
			t.Fatalf("bad or repeated port %s", p)
		}
		seen[p] = true
	}
}

func TestClockTicks(t *testing.T) {
	if n := clockTicks(); n < 1 || n > 10000 {
		t.Errorf("clockTicks = %d", n)
	}
}
