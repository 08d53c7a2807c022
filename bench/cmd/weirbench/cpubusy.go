package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes is one CPU's line of /proc/stat: busy and total jiffies.
type cpuTimes struct{ busy, total uint64 }

// parseCPUList reads a taskset-style CPU list ("1", "0,2", "2-3,6").
func parseCPUList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("CPU list %q: bad CPU %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CPU list %q is empty", s)
	}
	return out, nil
}

// allCPUs is the key of /proc/stat's first line, all CPUs together.
const allCPUs = -1

// parseProcStatCPUs returns the CPU lines of /proc/stat, all CPUs under
// allCPUs. Idle and iowait are not busy; user, nice, system, irq, softirq
// and steal (time the host gave someone else) are; guest time is already
// in user.
func parseProcStatCPUs(b []byte) map[int]cpuTimes {
	out := map[int]cpuTimes{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		n := allCPUs
		if f[0] != "cpu" {
			var err error
			if n, err = strconv.Atoi(f[0][3:]); err != nil {
				continue
			}
		}
		var v [8]uint64 // user nice system idle iowait irq softirq steal
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
		}
		idle := v[3] + v[4]
		busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
		out[n] = cpuTimes{busy: busy, total: busy + idle}
	}
	return out
}

// cpuSnapshot reads /proc/stat's per-CPU lines.
func cpuSnapshot() (map[int]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseProcStatCPUs(b), nil
}

// busyBetween is the busy fraction of cpus between two snapshots, or -1
// when it cannot be told.
func busyBetween(a, b map[int]cpuTimes, cpus []int) float64 {
	var busy, total uint64
	for _, c := range cpus {
		x, ok1 := a[c]
		y, ok2 := b[c]
		if !ok1 || !ok2 || y.total < x.total || y.busy < x.busy {
			return -1
		}
		busy += y.busy - x.busy
		total += y.total - x.total
	}
	if total == 0 {
		return -1
	}
	return float64(busy) / float64(total)
}

// busiestBetween is the busy fraction of the busiest of cpus between two
// snapshots, or -1 when it cannot be told. With several load CPUs, one of
// them saturated starves whatever runs there even while the average looks
// fine.
func busiestBetween(a, b map[int]cpuTimes, cpus []int) float64 {
	out := -1.0
	for _, c := range cpus {
		v := busyBetween(a, b, []int{c})
		if v < 0 {
			return -1
		}
		out = max(out, v)
	}
	return out
}

// cpuBusy is the busy fraction of the whole machine over d, 0 when it
// cannot be told.
func cpuBusy(d time.Duration) float64 {
	a, err := cpuSnapshot()
	if err != nil {
		return 0
	}
	time.Sleep(d)
	b, err := cpuSnapshot()
	if err != nil {
		return 0
	}
	return max(busyBetween(a, b, []int{allCPUs}), 0)
}

// systemBusyTicks is the busy time of all CPUs, in clock ticks.
func systemBusyTicks() (float64, bool) {
	s, err := cpuSnapshot()
	if err != nil {
		return 0, false
	}
	t, ok := s[allCPUs]
	return float64(t.busy), ok
}
