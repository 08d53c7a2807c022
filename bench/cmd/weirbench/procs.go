package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the harness started: a backend, a contender, Redis.
// Each runs in its own process group so that stopping it also stops what
// it forked (nginx's worker), and dies with the harness (Pdeathsig) so an
// interrupted run leaves nothing listening.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	ctl  *control // nil unless started with one
}

// control is a pipe pair to a process that takes one request per line on
// its stdin and answers each with one line on its stdout.
type control struct {
	in  io.WriteCloser
	out *bufio.Reader
}

// pinner prefixes commands with `taskset -c CPUS` when taskset exists,
// and with `chrt -f 1` when rt is set and chrt may be used.
type pinner struct {
	taskset string // path, "" when missing
	chrt    string // path, "" when not to be used
	rt      bool
}

func (p pinner) wrap(cpus string, argv []string) []string {
	if p.taskset != "" && cpus != "" {
		argv = append([]string{p.taskset, "-c", cpus}, argv...)
	}
	if p.rt && p.chrt != "" {
		argv = append([]string{p.chrt, "-f", "1"}, argv...)
	}
	return argv
}

// realtime is p for a process that runs SCHED_FIFO (when chrt is set).
func (p pinner) realtime() pinner {
	p.rt = true
	return p
}

// startProc starts argv (pinned to cpus) with its output in logDir/name.log.
func startProc(pin pinner, name, cpus, logDir string, env []string, argv ...string) (*proc, error) {
	return startProcCtl(pin, name, cpus, logDir, env, false, argv...)
}

// startProcCtl is startProc; withCtl connects the process's stdin and
// stdout to the harness (proc.ctl) instead, its stderr still to the log.
func startProcCtl(pin pinner, name, cpus, logDir string, env []string, withCtl bool, argv ...string) (*proc, error) {
	full := pin.wrap(cpus, argv)
	logPath := filepath.Join(logDir, sanitize(name)+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout = lf
	cmd.Stderr = lf
	var ctl *control
	if withCtl {
		cmd.Stdout = nil
		in, err1 := cmd.StdinPipe()
		out, err2 := cmd.StdoutPipe()
		if err := errors.Join(err1, err2); err != nil {
			lf.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		ctl = &control{in: in, out: bufio.NewReader(out)}
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(full, " "), err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), ctl: ctl}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after a grace
// period.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last lines of the process's log, for error messages.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// waitReady waits until addr accepts connections, failing early when the
// process exits.
func (p *proc) waitReady(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before listening on %s: %s", p.name, addr, p.tail(5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s: %s", p.name, addr, timeout, p.tail(5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// portAllocator hands out free loopback ports, never the same twice in a
// run (a port just closed by one probe could otherwise be handed out again
// before its owner binds it).
type portAllocator struct {
	mu   sync.Mutex
	used map[int]bool
}

func (a *portAllocator) next() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used == nil {
		a.used = map[int]bool{}
	}
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		// 6379 is the machine's own Redis; never touch it.
		if a.used[port] || port == 6379 {
			continue
		}
		a.used[port] = true
		return "127.0.0.1:" + strconv.Itoa(port), nil
	}
	return "", errors.New("find a free port: none after 50 tries")
}

// cpuTicks is utime+stime of a process, in clock ticks (man 5 proc,
// /proc/PID/stat fields 14 and 15).
type cpuTicks int64

// parseProcStat reads the parent pid and utime+stime from the contents of
// /proc/PID/stat. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last
// ')'.
func parseProcStat(b []byte) (ppid int, ticks cpuTicks, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("parse /proc stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc stat: ppid %q: %w", f[1], err)
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc stat: utime %q: %w", f[11], err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc stat: stime %q: %w", f[12], err)
	}
	return ppid, cpuTicks(ut + st), nil
}

// treeCPU sums utime+stime over the given processes and all their
// descendants (nginx's master forks its worker, taskset execs in place).
func treeCPU(roots []int) (cpuTicks, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("read /proc: %w", err)
	}
	type st struct {
		ppid  int
		ticks cpuTicks
	}
	all := map[int]st{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		ppid, t, err := parseProcStat(b)
		if err != nil {
			continue
		}
		all[pid] = st{ppid, t}
	}
	in := map[int]bool{}
	for _, r := range roots {
		if _, ok := all[r]; !ok {
			return 0, fmt.Errorf("read cpu time: process %d is gone", r)
		}
		in[r] = true
	}
	// Walk until no new descendant is found; trees here are two deep.
	for changed := true; changed; {
		changed = false
		for pid, s := range all {
			if !in[pid] && in[s.ppid] {
				in[pid] = true
				changed = true
			}
		}
	}
	var sum cpuTicks
	for pid := range in {
		sum += all[pid].ticks
	}
	return sum, nil
}

// clockTicks is sysconf(_SC_CLK_TCK), asked of getconf; 100 on every
// Linux this runs on, which is also the fallback.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
