package gcfloor

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// goal is the runtime's heap goal for a percent (runtime/mgcpacer.go,
// commit): live + (live+scan) × p/100, at least 4 MiB × p/100.
func goal(live, scan int64, p int) int64 {
	g := live + (live+scan)*int64(p)/100
	if m := int64(runtimeMinimum) * int64(p) / 100; g < m {
		g = m
	}
	return g
}

func TestPercent(t *testing.T) {
	const MiB = 1 << 20
	for _, c := range []struct {
		live, scan, floor int64
		base, want        int
	}{
		{live: 0, scan: 0, floor: 64 * MiB, base: 100, want: 1600},               // nothing measured yet: the cap, goal = floor
		{live: MiB / 2, scan: MiB / 2, floor: 64 * MiB, base: 100, want: 1600},   // small live heap: the runtime's minimum is the floor
		{live: 8 * MiB, scan: 0, floor: 64 * MiB, base: 100, want: 700},          // 8 + 8×7 = 64
		{live: 8 * MiB, scan: 8 * MiB, floor: 64 * MiB, base: 100, want: 350},    // stacks count: 8 + 16×3.5 = 64
		{live: 32 * MiB, scan: 0, floor: 64 * MiB, base: 100, want: 100},         // Go's own goal reaches the floor
		{live: 100 * MiB, scan: 80 * MiB, floor: 64 * MiB, base: 100, want: 100}, // 10,000 connections: no effect
		{live: 40 * MiB, scan: 0, floor: 64 * MiB, base: 100, want: 100},         // never under base
		{live: MiB, scan: 0, floor: 0, base: 100, want: 100},                     // off
		{live: MiB, scan: 0, floor: 2 * MiB, base: 100, want: 100},               // a floor under Go's minimum: base
		{live: 16 * MiB, scan: 0, floor: 256 * MiB, base: 50, want: 1500},        // another base
	} {
		got := Percent(c.live, c.scan, c.floor, c.base)
		if got != c.want {
			t.Errorf("Percent(live %d, scan %d, floor %d, base %d) = %d, want %d", c.live, c.scan, c.floor, c.base, got, c.want)
			continue
		}
		// The goal it gives: the floor (within a MiB of rounding), or
		// Go's own when that is larger; never past max(floor, Go's own) + live.
		own := goal(c.live, c.scan, c.base)
		g := goal(c.live, c.scan, got)
		if want := max(own, c.floor); c.floor > 0 && (g < want-MiB || g > want+c.live) {
			t.Errorf("live %d, scan %d, floor %d: goal %d, want about %d", c.live, c.scan, c.floor, g, want)
		}
	}
}

// gcPercent is the running GC percent.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// TestStartAndSet: the controller lifts the percent after a cycle when
// the live heap is small, Set(0) brings it back to 100 at once, and a
// new floor applies at once too.
func TestStartAndSet(t *testing.T) {
	if why := Off(); why != "" {
		t.Skip("the floor is off in this environment: " + why)
	}
	defer debug.SetGCPercent(base)
	Start(64<<20, slog.New(slog.DiscardHandler))
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() <= base && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := gcPercent(); p <= base {
		t.Fatalf("GC percent %d after collections with a floor of 64 MiB and a small live heap, want > %d", p, base)
	}
	Set(0)
	if p := gcPercent(); p != base {
		t.Errorf("GC percent %d after Set(0), want %d", p, base)
	}
	Set(256 << 20)
	if p := gcPercent(); p <= base {
		t.Errorf("GC percent %d after Set(256 MiB), want > %d", p, base)
	}
}
