package pool

import (
	"errors"
	"testing"
	"time"
)

// TestBreakerStateMachine drives the breaker through event scripts on a
// fake clock (nanoseconds): window 100ns in 10 buckets, open 50ns, trips at
// >= 50% failures over >= 4 requests.
func TestBreakerStateMachine(t *testing.T) {
	cfg := &breakerCfg{ratio: 0.5, minRequests: 4, width: 10, openFor: 50}
	type step struct {
		at    int64
		op    string // ok | fail | admit | claim
		state int    // expected breaker state after the step
		want  int    // admit: expected admission; claim: 1 = won
	}
	S, F := "ok", "fail"
	cases := []struct {
		name  string
		steps []step
	}{
		{"successes keep it closed", []step{
			{0, S, circuitClosed, 0}, {1, S, circuitClosed, 0}, {2, S, circuitClosed, 0}, {3, S, circuitClosed, 0},
			{4, "admit", circuitClosed, ready},
		}},
		{"below min requests never trips", []step{
			{0, F, circuitClosed, 0}, {1, F, circuitClosed, 0}, {2, F, circuitClosed, 0},
			{3, "admit", circuitClosed, ready},
		}},
		{"ratio reached at min requests trips", []step{
			{0, S, circuitClosed, 0}, {1, S, circuitClosed, 0}, {2, F, circuitClosed, 0}, {3, F, circuitOpen, 0},
			{4, "admit", circuitOpen, notReady},
		}},
		{"ratio below threshold stays closed", []step{
			{0, S, circuitClosed, 0}, {1, S, circuitClosed, 0}, {2, S, circuitClosed, 0}, {3, F, circuitClosed, 0},
			{4, S, circuitClosed, 0}, {5, F, circuitClosed, 0}, // 2 of 6
		}},
		{"failures older than the window are forgotten", []step{
			{0, F, circuitClosed, 0}, {1, F, circuitClosed, 0}, {2, F, circuitClosed, 0},
			{150, S, circuitClosed, 0}, {151, S, circuitClosed, 0}, {152, S, circuitClosed, 0}, {153, F, circuitClosed, 0}, // 1 of 4 in window
		}},
		{"window slides bucket by bucket", []step{
			{0, S, circuitClosed, 0}, {0, S, circuitClosed, 0}, {0, S, circuitClosed, 0}, // bucket 0, leaves the window at 100
			{50, S, circuitClosed, 0},
			{90, F, circuitClosed, 0}, {91, F, circuitClosed, 0}, {92, F, circuitClosed, 0}, // 3 of 7
			{100, F, circuitOpen, 0}, // bucket 0 gone: 4 of 5
		}},
		{"open refuses until open_for, then one probe", []step{
			{0, S, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitOpen, 0},
			{49, "admit", circuitOpen, notReady},
			{49, "claim", circuitOpen, 0},
			{50, "admit", circuitOpen, probeReady},
			{50, "claim", circuitHalfOpen, 1},
			{51, "admit", circuitHalfOpen, notReady}, // the probe is out
			{51, "claim", circuitHalfOpen, 0},
		}},
		{"probe success closes and clears the window", []step{
			{0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitOpen, 0},
			{60, "claim", circuitHalfOpen, 1},
			{61, S, circuitClosed, 0},
			{62, "admit", circuitClosed, ready},
			{63, F, circuitClosed, 0}, {64, F, circuitClosed, 0}, {65, F, circuitClosed, 0}, // old failures gone: 3 < 4
			{66, F, circuitOpen, 0},
		}},
		{"probe failure reopens for open_for", []step{
			{0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitOpen, 0},
			{60, "claim", circuitHalfOpen, 1},
			{70, F, circuitOpen, 0},
			{119, "admit", circuitOpen, notReady},
			{120, "admit", circuitOpen, probeReady},
		}},
		{"outcomes while open are ignored", []step{
			{0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitOpen, 0},
			{10, S, circuitOpen, 0}, {20, F, circuitOpen, 0},
			{49, "admit", circuitOpen, notReady}, // the failure at 20 did not restart open_for
		}},
		{"a lost probe is replaced after open_for", []step{
			{0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitClosed, 0}, {0, F, circuitOpen, 0},
			{50, "claim", circuitHalfOpen, 1},
			{99, "admit", circuitHalfOpen, notReady},
			{100, "admit", circuitHalfOpen, probeReady},
			{100, "claim", circuitHalfOpen, 1},
			{101, "claim", circuitHalfOpen, 0},
			{102, S, circuitClosed, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b breaker
			for i, s := range c.steps {
				switch s.op {
				case S:
					b.record(cfg, true, s.at)
				case F:
					b.record(cfg, false, s.at)
				case "admit":
					if got := b.admission(cfg, s.at); got != s.want {
						t.Fatalf("step %d (t=%d admit): admission %d, want %d", i, s.at, got, s.want)
					}
				case "claim":
					if got := b.claimProbe(cfg, s.at); got != (s.want == 1) {
						t.Fatalf("step %d (t=%d claim): won=%v, want %v", i, s.at, got, s.want == 1)
					}
				}
				if got := b.state(); got != s.state {
					t.Fatalf("step %d (t=%d %s): state %s, want %s", i, s.at, s.op, circuitNames[got], circuitNames[s.state])
				}
			}
		})
	}
}

// TestBreakerCountsSaturate: a bucket's counters stop at their maximum
// instead of overflowing into the bucket index.
func TestBreakerCountsSaturate(t *testing.T) {
	cfg := &breakerCfg{ratio: 0.5, minRequests: maxMinRequests, width: 10, openFor: 50}
	var b breaker
	for range cntMask + 10 {
		b.record(cfg, true, 5)
	}
	total, fails := b.sum(0)
	if total != cntMask || fails != 0 {
		t.Fatalf("total %d fails %d, want %d and 0", total, fails, cntMask)
	}
	if idx := b.buckets[0].Load() >> idxShift; idx != 0 {
		t.Fatalf("bucket index corrupted: %d", idx)
	}
}

// TestBreakerThroughService: the breaker as the proxy sees it, with End and
// Pick on a fake clock.
func TestBreakerThroughService(t *testing.T) {
	clk := newFakeClock()
	r := newRegistry(clk.Now)
	s := mustService(t, r, ServiceConfig{
		Name:    "brk-svc",
		Targets: fakeTargets(1),
		Breaker: &BreakerConfig{FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, OpenFor: 30 * time.Second},
	})
	pickEnd := func(ok bool) {
		t.Helper()
		m, err := s.Pick(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Begin()
		m.End(ok, time.Millisecond)
	}
	for i := range 10 {
		pickEnd(i%2 == 0) // 5 of 10 failed: trips on the 10th
		clk.Advance(100 * time.Millisecond)
	}
	if got := s.Status()[0].Circuit; got != "open" {
		t.Fatalf("circuit %q after 50%% failures, want open", got)
	}
	if _, err := s.Pick(nil, nil); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("open circuit: err %v, want ErrNoTarget", err)
	}
	clk.Advance(30 * time.Second)
	probe, err := s.Pick(nil, nil)
	if err != nil {
		t.Fatalf("after open_for the probe should pass: %v", err)
	}
	if got := s.Status()[0].Circuit; got != "half_open" {
		t.Fatalf("circuit %q with the probe out, want half_open", got)
	}
	if _, err := s.Pick(nil, nil); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("second request while half-open: err %v, want ErrNoTarget", err)
	}
	probe.Begin()
	probe.End(false, time.Millisecond)
	if got := s.Status()[0].Circuit; got != "open" {
		t.Fatalf("failed probe: circuit %q, want open", got)
	}
	clk.Advance(30 * time.Second)
	probe, _ = s.Pick(nil, nil)
	probe.Begin()
	probe.End(true, time.Millisecond)
	if got := s.Status()[0].Circuit; got != "closed" {
		t.Fatalf("successful probe: circuit %q, want closed", got)
	}
	for range 20 {
		pickEnd(true)
	}
}
