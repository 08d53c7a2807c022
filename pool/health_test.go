package pool

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

func fastActive() *ActiveConfig {
	return &ActiveConfig{Path: "/healthz", Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, HealthyAfter: 2, UnhealthyAfter: 2}
}

// TestActiveHealthFlipsRealServer: a real upstream answering 500 on its
// health endpoint is taken out after UnhealthyAfter probes and brought back
// after HealthyAfter good ones.
func TestActiveHealthFlipsRealServer(t *testing.T) {
	up := newUpstream(t)
	other := newUpstream(t)
	r := NewRegistry()
	s := mustService(t, r, ServiceConfig{
		Name:    "active-flip",
		Targets: []TargetConfig{{URL: up.URL, Weight: 1}, {URL: other.URL, Weight: 1}},
		Health:  HealthConfig{Active: fastActive()},
	})
	s.Start()
	healthy := func(i int) func() bool { return func() bool { return s.Status()[i].Healthy } }
	eventually(t, 2*time.Second, "first probes", func() bool { return up.probes.Load() >= 2 && other.probes.Load() >= 2 })
	if !s.Status()[0].Healthy {
		t.Fatal("a target answering 200 is unhealthy")
	}

	up.status.Store(http.StatusInternalServerError)
	eventually(t, 2*time.Second, "target 0 to go down", func() bool { return !healthy(0)() })
	for range 100 {
		m, err := s.Pick(nil, nil)
		if err != nil || m.URL() != s.Members()[1].URL() {
			t.Fatalf("picked %v (%v) while target 0 is down", m, err)
		}
	}

	up.status.Store(http.StatusOK)
	eventually(t, 2*time.Second, "target 0 to come back", healthy(0))
	if other.hits.Load() != 0 || up.hits.Load() != 0 {
		t.Errorf("probes went to the wrong path: %d, %d non-health hits", up.hits.Load(), other.hits.Load())
	}
}

// TestActiveHealthDeadServer: a target whose server is gone (connection
// refused) is taken out; expect_status is honoured.
func TestActiveHealthDeadServerAndExpectStatus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more

	up := newUpstream(t)
	up.status.Store(http.StatusNoContent)
	active := fastActive()
	active.ExpectStatus = []int{200}
	r := NewRegistry()
	s := mustService(t, r, ServiceConfig{
		Name:    "active-dead",
		Targets: []TargetConfig{{URL: deadURL, Weight: 1}, {URL: up.URL, Weight: 1}},
		Health:  HealthConfig{Active: active},
	})
	s.Start()
	eventually(t, 2*time.Second, "both targets down", func() bool {
		st := s.Status()
		return !st[0].Healthy && !st[1].Healthy
	})
	if _, err := s.Pick(nil, nil); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("every target down: err %v, want ErrNoTarget", err)
	}
	up.status.Store(http.StatusOK)
	eventually(t, 2*time.Second, "the 200 target back", func() bool { return s.Status()[1].Healthy })
}

// TestActiveProbeRequest: the probe is GET path with the target's Host and
// the health-check user agent, and does not use the request pool.
func TestActiveProbeRequest(t *testing.T) {
	seen := make(chan *http.Request, 16)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r:
		default:
		}
	})
	s := mustService(t, NewRegistry(), ServiceConfig{
		Name:    "active-req",
		Targets: []TargetConfig{{URL: srv.URL + "/", Weight: 1}},
		Health:  HealthConfig{Active: &ActiveConfig{Path: "/status?deep=1", Interval: time.Hour, Timeout: time.Second}},
	})
	s.Start()
	select {
	case r := <-seen:
		if r.Method != "GET" || r.URL.Path != "/status" || r.URL.RawQuery != "deep=1" {
			t.Errorf("probe %s %s", r.Method, r.URL)
		}
		if r.Host != strings.TrimPrefix(srv.URL, "http://") {
			t.Errorf("probe Host %q, want %q", r.Host, strings.TrimPrefix(srv.URL, "http://"))
		}
		if ua := r.Header.Get("User-Agent"); ua != "weir-health-check" {
			t.Errorf("probe User-Agent %q", ua)
		}
		if !r.Close {
			t.Error("probe should ask to close its connection")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no probe at start")
	}
}

// TestPassiveHealth: UnhealthyAfter consecutive failed requests eject a
// member; a success in between resets the count; HealthyAfter later it is
// back.
func TestPassiveHealth(t *testing.T) {
	clk := newFakeClock()
	r := newRegistry(clk.Now)
	s := mustService(t, r, ServiceConfig{
		Name:    "passive",
		Targets: fakeTargets(1, 1),
		Health:  HealthConfig{Passive: &PassiveConfig{UnhealthyAfter: 3, HealthyAfter: 10 * time.Second}},
	})
	m := s.Members()[0]
	end := func(ok bool) { m.Begin(); m.End(ok, time.Millisecond) }
	end(false)
	end(false)
	end(true) // resets
	end(false)
	end(false)
	if !s.Status()[0].Healthy {
		t.Fatal("ejected after 2 consecutive failures, threshold 3")
	}
	end(false)
	if s.Status()[0].Healthy {
		t.Fatal("not ejected after 3 consecutive failures")
	}
	for range 50 {
		if got, _ := s.Pick(nil, nil); got == m {
			t.Fatal("picked the ejected member")
		}
	}
	end(true) // a late success from a request sent earlier does not readmit it
	if s.Status()[0].Healthy {
		t.Fatal("a success during the quiet period ended the ejection")
	}
	clk.Advance(10*time.Second - 1)
	if s.Status()[0].Healthy {
		t.Fatal("back before healthy_after")
	}
	clk.Advance(1)
	if !s.Status()[0].Healthy {
		t.Fatal("not back after healthy_after")
	}
	seen := false
	for range 10 {
		if got, _ := s.Pick(nil, nil); got == m {
			seen = true
		}
	}
	if !seen {
		t.Fatal("the readmitted member is never picked")
	}
	// Back in rotation it gets UnhealthyAfter fresh chances.
	end(false)
	end(false)
	if !s.Status()[0].Healthy {
		t.Fatal("re-ejected before 3 new failures")
	}
	end(false)
	if s.Status()[0].Healthy {
		t.Fatal("not re-ejected after 3 new failures")
	}
}

// TestActiveSuccessEndsPassiveEjection: a passing probe readmits a member
// ejected by passive health without waiting for HealthyAfter.
func TestActiveSuccessEndsPassiveEjection(t *testing.T) {
	up := newUpstream(t)
	s := mustService(t, NewRegistry(), ServiceConfig{
		Name:    "passive-active",
		Targets: []TargetConfig{{URL: up.URL, Weight: 1}},
		Health: HealthConfig{
			Active:  fastActive(),
			Passive: &PassiveConfig{UnhealthyAfter: 1, HealthyAfter: time.Hour},
		},
	})
	s.Start()
	eventually(t, 2*time.Second, "a first probe", func() bool { return up.probes.Load() >= 1 })
	m := s.Members()[0]
	m.Begin()
	m.End(false, time.Millisecond)
	before := up.probes.Load()
	eventually(t, 2*time.Second, "the next probe to readmit it", func() bool {
		return up.probes.Load() > before+1 && s.Status()[0].Healthy
	})
}

// TestHealthGauges: weir_upstream_target_healthy and weir_circuit_open
// follow the state and disappear with the target.
func TestHealthGauges(t *testing.T) {
	clk := newFakeClock()
	r := newRegistry(clk.Now)
	s, err := r.NewService(ServiceConfig{
		Name:    "gauges",
		Targets: fakeTargets(1),
		Health:  HealthConfig{Passive: &PassiveConfig{UnhealthyAfter: 1, HealthyAfter: time.Second}},
		Breaker: &BreakerConfig{MinRequests: 1, FailureRatio: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	labels := `{service="gauges",target="http://127.0.0.1:20000"}`
	expect := func(healthy, open string) {
		t.Helper()
		var buf bytes.Buffer
		metrics.WritePrometheus(&buf, false)
		out := buf.String()
		for _, want := range []string{"weir_upstream_target_healthy" + labels + " " + healthy, "weir_circuit_open" + labels + " " + open} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("metrics lack %q", want)
			}
		}
	}
	expect("1", "0")
	m := s.Members()[0]
	m.Begin()
	m.End(false, 0)
	expect("0", "1")
	s.Close()
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	if strings.Contains(buf.String(), labels) {
		t.Error("gauges of a dropped target are still exported")
	}
}

func TestEscapeLabel(t *testing.T) {
	if got, want := escapeLabel("a\"b\\c\nd"), `a\"b\\c\nd`; got != want {
		t.Fatalf("escapeLabel = %s, want %s", got, want)
	}
}

// TestAbandonCountsNothing: a request ended with Abandon (the client's
// failure) leaves in-flight at zero and counts neither toward passive
// health nor toward the circuit breaker.
func TestAbandonCountsNothing(t *testing.T) {
	clk := newFakeClock()
	r := newRegistry(clk.Now)
	s := mustService(t, r, ServiceConfig{
		Name:    "abandon",
		Targets: fakeTargets(1, 1),
		Health:  HealthConfig{Passive: &PassiveConfig{UnhealthyAfter: 2, HealthyAfter: time.Hour}},
		Breaker: &BreakerConfig{FailureRatio: 0.5, MinRequests: 2, Window: time.Minute, OpenFor: time.Hour},
	})
	m := s.Members()[0]
	for range 10 {
		m.Begin()
		m.Abandon()
	}
	st := s.Status()[0]
	if !st.Healthy || st.Circuit != "closed" || st.InFlight != 0 {
		t.Fatalf("after 10 abandoned requests: %+v", st)
	}
	// The counts are untouched: two real failures still eject.
	m.Begin()
	m.End(false, time.Millisecond)
	if !s.Status()[0].Healthy {
		t.Fatal("ejected after one failure, threshold 2")
	}
	m.Begin()
	m.End(false, time.Millisecond)
	if s.Status()[0].Healthy {
		t.Fatal("not ejected after two failures")
	}
}
