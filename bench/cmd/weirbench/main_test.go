package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the backend process (which also
// generates the load), as the real binary does: the harness under test
// re-executes itself with WEIRBENCH_CHILD=backend.
func TestMain(m *testing.M) {
	if os.Getenv("WEIRBENCH_CHILD") == "backend" {
		os.Exit(backendChildMain())
	}
	os.Exit(m.Run())
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, o options)
		err   string
	}{
		{name: "defaults", args: nil, check: func(t *testing.T, o options) {
			if o.rounds != 3 || o.duration != 4*time.Second || o.warmup != time.Second || o.budget != 450*time.Second {
				t.Errorf("rounds %d duration %s warmup %s budget %s", o.rounds, o.duration, o.warmup, o.budget)
			}
			if !reflect.DeepEqual(o.loads, []int{25, 50, 75}) || !reflect.DeepEqual(o.loadsLarge, []int{50}) {
				t.Errorf("loads %v loads-1k %v", o.loads, o.loadsLarge)
			}
			if !reflect.DeepEqual(o.bodies, []string{"64B", "1KiB", "POST1KiB"}) || o.closed != "auto" {
				t.Errorf("bodies %v closed %q", o.bodies, o.closed)
			}
		}},
		{name: "quick", args: []string{"-quick"}, check: func(t *testing.T, o options) {
			if o.rounds != 1 || o.duration != 2*time.Second || o.budget != 75*time.Second || !reflect.DeepEqual(o.loads, []int{50}) {
				t.Errorf("rounds %d duration %s budget %s loads %v", o.rounds, o.duration, o.budget, o.loads)
			}
		}},
		{name: "explicit", args: []string{"-rounds", "2", "-duration", "1500ms", "-warmup", "0", "-loads", "10, 90", "-bodies", "1KiB", "-only", "weir,nginx", "-closed-loop", "builtin"},
			check: func(t *testing.T, o options) {
				if o.rounds != 2 || o.duration != 1500*time.Millisecond || o.warmup != 0 {
					t.Errorf("rounds %d duration %s warmup %s", o.rounds, o.duration, o.warmup)
				}
				if !reflect.DeepEqual(o.loads, []int{10, 90}) || !reflect.DeepEqual(o.bodies, []string{"1KiB"}) ||
					!reflect.DeepEqual(o.only, []string{"weir", "nginx"}) || o.closed != "builtin" {
					t.Errorf("loads %v bodies %v only %v closed %s", o.loads, o.bodies, o.only, o.closed)
				}
			}},
		{name: "bad rounds", args: []string{"-rounds", "-1"}, err: "-rounds must be >= 1"},
		{name: "short duration", args: []string{"-duration", "100ms"}, err: "-duration must be at least 500ms"},
		{name: "bad load", args: []string{"-loads", "50,x"}, err: `-loads: "x" is not a percentage between 1 and 200`},
		{name: "load out of range", args: []string{"-loads-1k", "0"}, err: `-loads-1k: "0" is not a percentage between 1 and 200`},
		{name: "empty loads", args: []string{"-loads", ","}, err: "-loads must list at least one percentage"},
		{name: "bad body", args: []string{"-bodies", "2KiB"}, err: `-bodies: "2KiB" is not a body; use 64B, 1KiB or POST1KiB`},
		{name: "bad closed loop", args: []string{"-closed-loop", "ab"}, err: `-closed-loop must be wrk, builtin or auto, got "ab"`},
		{name: "stray argument", args: []string{"extra"}, err: `unexpected argument "extra"`},
		{name: "bad conns", args: []string{"-conns", "0"}, err: "-conns must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestDefaultCPUs(t *testing.T) {
	for _, tt := range []struct {
		allowed     []int
		proxy, load string
	}{{nil, "0", "0"}, {[]int{3}, "3", "3"}, {[]int{0, 1}, "0", "1"}, {[]int{2, 5, 7}, "2", "5,7"}, {[]int{0, 1, 2, 3, 4, 5}, "0", "1,2,3"}} {
		if p, l := defaultCPUs(tt.allowed); p != tt.proxy || l != tt.load {
			t.Errorf("defaultCPUs(%v) = %s, %s; want %s, %s", tt.allowed, p, l, tt.proxy, tt.load)
		}
	}
	if got := allowedCPUs(); len(got) == 0 {
		t.Error("allowedCPUs is empty")
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1}, 2}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	in := []float64{3, 1, 2}
	median(in)
	if !reflect.DeepEqual(in, []float64{3, 1, 2}) {
		t.Errorf("median reordered its input: %v", in)
	}
}

func TestInsertSorted(t *testing.T) {
	var s []int
	for _, v := range []int{50, 25, 75, 50, 10} {
		s = insertSorted(s, v)
	}
	if !reflect.DeepEqual(s, []int{10, 25, 50, 75}) {
		t.Errorf("got %v", s)
	}
}

func TestRefLoad(t *testing.T) {
	for _, tt := range []struct {
		loads []int
		want  int
	}{{nil, 50}, {[]int{25, 50, 75}, 50}, {[]int{75, 25}, 75}} {
		if got := refLoad(tt.loads); got != tt.want {
			t.Errorf("refLoad(%v) = %d, want %d", tt.loads, got, tt.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.4, "1,234,567"}} {
		if got := fmtInt(tt.v); got != tt.want {
			t.Errorf("fmtInt(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	for _, tt := range []struct {
		v    float64
		want string
	}{{0, "-"}, {0.1234, "0.123"}, {12.345, "12.35"}, {1234.5, "1234"}} {
		if got := fmtMs(tt.v); got != tt.want {
			t.Errorf("fmtMs(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	if got := fmtDur(125 * time.Second); got != "2m05s" {
		t.Errorf("fmtDur = %q", got)
	}
	if got := sanitize("weir-x2+rate limit/#1"); got != "weir-x2_rate_limit__1" {
		t.Errorf("sanitize = %q", got)
	}
	if !strings.Contains(fmtOptMs(ptr(0.25)), "+0.250") || fmtRatio(nil) != "-" {
		t.Errorf("fmtOptMs/fmtRatio")
	}
}
