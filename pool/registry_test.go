package pool

import (
	"net/http"
	"testing"
	"time"
)

// TestReloadKeepsPoolsAndState simulates a config reload: a second
// NewService for the same service shares the target state (health,
// breaker, in-flight) of the first, shares its active
// checker instead of starting another, and closing the old service does
// not stop the new one's checks.
func TestReloadKeepsPoolsAndState(t *testing.T) {
	checkLeaks(t)
	up := newUpstream(t)
	r := NewRegistry()
	cfg := ServiceConfig{
		Name:    "reload",
		Targets: []TargetConfig{{URL: up.URL, Weight: 1}},
		Health:  HealthConfig{Active: fastActive()},
		Breaker: &BreakerConfig{MinRequests: 1, FailureRatio: 1, OpenFor: time.Hour},
	}
	old, err := r.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old.Start()
	old.Start() // idempotent
	eventually(t, 2*time.Second, "first probes", func() bool { return up.probes.Load() >= 2 })
	om := old.Members()[0]
	om.Begin() // a request of the old snapshot still in flight

	cfg.Targets[0].Weight = 5 // the reload changes a weight, not the check
	cur, err := r.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm := cur.Members()[0]
	if cm.st != om.st {
		t.Fatal("the reload built a new target state: health lost")
	}
	if got := cur.Status()[0]; got.InFlight != 1 || got.Weight != 5 {
		t.Fatalf("new snapshot sees in-flight %d weight %d, want 1 and 5", got.InFlight, got.Weight)
	}
	cur.Start()
	if om.chk == nil || cm.chk != om.chk || om.chk.refs != 2 {
		t.Fatalf("reload started a second checker (old %p new %p)", om.chk, cm.chk)
	}

	// What the old snapshot's request learns reaches the new snapshot.
	om.End(false, time.Millisecond)
	if got := cur.Status()[0]; got.Circuit != "open" || got.InFlight != 0 {
		t.Fatalf("new snapshot after the old one's failed request: %+v, want circuit open, nothing in flight", got)
	}

	// Probes continue at one checker's rate.
	p0 := up.probes.Load()
	time.Sleep(200 * time.Millisecond)
	rate := up.probes.Load() - p0
	if rate > 14 { // two checkers would make about 20; a slow machine fewer than 10
		t.Fatalf("%d probes in 200ms at a 20ms interval: want one checker's worth (at most about 10)", rate)
	}

	old.Close()
	old.Close() // idempotent
	p1 := up.probes.Load()
	eventually(t, 2*time.Second, "the new snapshot's checks to go on", func() bool { return up.probes.Load() >= p1+3 })
	if cm.chk == nil || cm.chk.refs != 1 {
		t.Fatal("closing the old snapshot released the new one's checker")
	}
	if len(r.states) != 1 {
		t.Fatalf("registry holds %d states; want 1", len(r.states))
	}

	cur.Close()
	if len(r.states) != 0 {
		t.Fatalf("after the last Close the registry holds %d states", len(r.states))
	}
	p2 := up.probes.Load()
	time.Sleep(60 * time.Millisecond)
	if up.probes.Load() != p2 {
		t.Fatal("probes continue after every service was closed")
	}
}

// TestReloadChangedCheckReplacesChecker: new check settings replace the
// checker but keep the verdict it reached.
func TestReloadChangedCheckReplacesChecker(t *testing.T) {
	checkLeaks(t)
	up := newUpstream(t)
	up.status.Store(http.StatusServiceUnavailable)
	r := NewRegistry()
	cfg := ServiceConfig{Name: "recheck", Targets: []TargetConfig{{URL: up.URL, Weight: 1}}, Health: HealthConfig{Active: fastActive()}}
	old := mustService(t, r, cfg)
	old.Start()
	eventually(t, 2*time.Second, "target down", func() bool { return !old.Status()[0].Healthy })

	a := *fastActive()
	a.Interval = 25 * time.Millisecond
	a.HealthyAfter = 3
	cfg.Health.Active = &a
	cur := mustService(t, r, cfg)
	cur.Start()
	if cur.Members()[0].chk == old.Members()[0].chk {
		t.Fatal("changed check settings kept the old checker")
	}
	if cur.Status()[0].Healthy {
		t.Fatal("replacing the checker reset the target to healthy")
	}
	old.Close()
	up.status.Store(http.StatusOK)
	eventually(t, 2*time.Second, "the new checker to bring it back", func() bool { return cur.Status()[0].Healthy })
}

// TestReloadDroppingFeatures: a snapshot without active checks, passive
// checks or a breaker must not inherit a verdict nothing would ever clear.
func TestReloadDroppingFeatures(t *testing.T) {
	up := newUpstream(t)
	up.status.Store(http.StatusInternalServerError)
	r := NewRegistry()
	cfg := ServiceConfig{
		Name:    "drop",
		Targets: []TargetConfig{{URL: up.URL, Weight: 1}},
		Health:  HealthConfig{Active: fastActive(), Passive: &PassiveConfig{UnhealthyAfter: 1, HealthyAfter: time.Hour}},
		Breaker: &BreakerConfig{MinRequests: 1, FailureRatio: 1, OpenFor: time.Hour},
	}
	old := mustService(t, r, cfg)
	old.Start()
	eventually(t, 2*time.Second, "target down", func() bool { return !old.Status()[0].Healthy })
	m := old.Members()[0]
	m.st.activeDown.Store(false) // look at passive and breaker alone for a moment
	m.Begin()
	m.End(false, 0)
	if st := old.Status()[0]; st.Circuit != "open" {
		t.Fatalf("circuit %s, want open", st.Circuit)
	}

	cur := mustService(t, r, ServiceConfig{Name: "drop", Targets: cfg.Targets})
	cur.Start()
	old.Close()
	st := cur.Status()[0]
	if !st.Healthy || st.Circuit != "closed" {
		t.Fatalf("after dropping health checks and breaker: healthy=%v circuit=%s; want true, closed", st.Healthy, st.Circuit)
	}
	if _, err := cur.Pick(nil, nil); err != nil {
		t.Fatalf("pick: %v", err)
	}
}

// TestStatePerService: target state is per service, even for one
// address.
func TestStatePerService(t *testing.T) {
	r := NewRegistry()
	a := mustService(t, r, ServiceConfig{Name: "a", Targets: fakeTargets(1, 1)})
	b := mustService(t, r, ServiceConfig{Name: "b", Targets: []TargetConfig{{URL: "HTTP://127.0.0.1:20000/", Weight: 1}}})
	if a.Members()[0].st == b.Members()[0].st {
		t.Error("health state must be per service")
	}
	if len(r.states) != 3 {
		t.Errorf("%d target states, want 3", len(r.states))
	}
}
