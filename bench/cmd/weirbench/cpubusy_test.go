package main

import (
	"reflect"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{"1": {1}, "0,2": {0, 2}, "2-3,6": {2, 3, 6}, " 4 ": {4}} {
		got, err := parseCPUList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "3-1", "-1", "1-x"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q): no error", bad)
		}
	}
}

func TestBusyBetween(t *testing.T) {
	a := parseProcStatCPUs([]byte("cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 100 0 100 800 0 0 0 50 0 0\ncpu1 10 0 10 980 0 0 0 0 0 0\nintr 1 2 3\n"))
	// cpu0: 340 jiffies later, 190 busy (user 100, softirq 50, steal 40),
	// 150 idle. cpu1: all 100 busy. The aggregate line has its own key.
	b := parseProcStatCPUs([]byte("cpu0 200 0 100 950 0 0 50 90 0 0\ncpu1 60 0 60 980 0 0 0 0 0 0\n"))
	if got := busyBetween(a, b, []int{0}); got != 190.0/340 {
		t.Errorf("cpu0 busy = %v, want 190/340", got)
	}
	if _, ok := a[allCPUs]; !ok {
		t.Error("the all-CPUs line is missing")
	}
	if got := busyBetween(a, b, []int{1}); got != 1 {
		t.Errorf("cpu1 busy = %v, want 1", got)
	}
	if got := busyBetween(a, b, []int{0, 1}); got != 290.0/440 {
		t.Errorf("cpu0+1 busy = %v, want 290/440", got)
	}
	if got := busiestBetween(a, b, []int{0, 1}); got != 1 {
		t.Errorf("busiest of 0,1 = %v, want 1 (CPU 1)", got)
	}
	if got := busiestBetween(a, b, []int{0, 7}); got != -1 {
		t.Errorf("busiest with an unknown CPU = %v, want -1", got)
	}
	if got := busyBetween(a, b, []int{7}); got != -1 {
		t.Errorf("unknown CPU = %v, want -1", got)
	}
	if got := busyBetween(a, a, []int{0}); got != -1 {
		t.Errorf("no time passed = %v, want -1", got)
	}
}
