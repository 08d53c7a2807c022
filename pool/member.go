package pool

import "time"

// Member is one target as seen by one Service (snapshot): its weight in
// this snapshot and the shared target state. A *Member returned by Pick
// stays valid after a reload: the proxy may finish the request and call
// End on it.
type Member struct {
	svc    *Service
	t      target
	weight int
	st     *targetState

	chk *checker // the active checker this member holds; guarded by svc.mu
}

// Readiness of a member for Pick.
const (
	notReady   = iota // unhealthy, drained, or circuit open
	ready             // may be used
	probeReady        // circuit open long enough: may be used as the half-open probe, if claimed
)

// URL is the canonical target URL, scheme://host[:port].
func (m *Member) URL() string { return m.t.url }

// Host is the value for the Host header (RFC 9110 §7.2) when the route does
// not preserve the client's: host, plus ":port" unless it is the scheme's
// default.
func (m *Member) Host() string { return m.t.host }

// Weight is the member's weight in its service's snapshot.
func (m *Member) Weight() int { return m.weight }

// Begin counts a request sent to the member (least_conn reads the count).
// Every Begin must be matched by exactly one End or Abandon.
func (m *Member) Begin() { m.st.inflight.Add(1) }

// End closes a request begun with Begin. ok reports the outcome as the
// pool should see it; the proxy passes ok=false for a connect error,
// connection reset, timeout, or a 502/503/504 answer from the target (the
// target failing as a server), and ok=true for every other response,
// including other 5xx (an application error is not a dead target). d is
// the time the request took; successful durations feed the latency
// average shown by Status.
//
// ok=false counts toward passive health (UnhealthyAfter in a row ejects
// the target for HealthyAfter) and the circuit breaker. End does not
// allocate and takes no locks.
func (m *Member) End(ok bool, d time.Duration) {
	st := m.st
	st.inflight.Add(-1)
	if ok {
		st.observeLatency(d)
	}
	s := m.svc
	if s.spec.passive == nil && s.spec.breaker == nil {
		return
	}
	now := int64(-1)
	if p := s.spec.passive; p != nil {
		if ok {
			if st.consecFail.Load() != 0 {
				st.consecFail.Store(0)
			}
			if u := st.passiveUntil.Load(); u != 0 {
				now = st.reg.clock()
				if now >= u {
					st.passiveUntil.CompareAndSwap(u, 0)
				}
			}
		} else if st.consecFail.Add(1) >= p.unhealthyAfter {
			// Start counting afresh: once back in rotation the target gets
			// UnhealthyAfter more chances.
			st.consecFail.Store(0)
			now = st.reg.clock()
			st.passiveUntil.Store(now + p.healthyAfter)
		}
	}
	if b := s.spec.breaker; b != nil {
		if now < 0 {
			now = st.reg.clock()
		}
		st.brk.record(b, ok, now)
	}
}

// Abandon closes a request begun with Begin that has no outcome to report:
// the try failed on the client's side (its request body broke, stalled or
// was cut short), which says nothing about the target. Neither passive
// health nor the circuit breaker counts it. A half-open circuit whose
// probe ends this way stays half-open, and a new probe goes out once the
// lost one's time is up, as for any probe without an outcome.
func (m *Member) Abandon() { m.st.inflight.Add(-1) }

// observeLatency folds d into an exponentially weighted moving average
// (weight 1/8 for the new sample, like TCP's SRTT, RFC 6298 §2). One CAS,
// no retry: when requests end at the same instant one sample is dropped,
// which an average for display can afford better than a contended loop.
func (st *targetState) observeLatency(d time.Duration) {
	old := st.latency.Load()
	nw := int64(d)
	if old != 0 {
		nw = old + (int64(d)-old)/8
	}
	st.latency.CompareAndSwap(old, nw)
}

// quickReady is the common case, small enough to inline: weighted,
// healthy, not ejected, circuit closed. When it says no, readiness decides.
func (m *Member) quickReady() bool {
	st := m.st
	return m.weight != 0 && !st.activeDown.Load() && st.passiveUntil.Load() == 0 &&
		st.brk.word.Load()&3 == circuitClosed
}

// readiness tells a balancer whether the member can take a request. It
// reads the clock only when a passive ejection or an open breaker makes
// time matter.
func (m *Member) readiness() int {
	st := m.st
	if m.weight == 0 || st.activeDown.Load() {
		return notReady
	}
	now := int64(-1)
	if u := st.passiveUntil.Load(); u != 0 {
		now = st.reg.clock()
		if now < u {
			return notReady
		}
	}
	if b := m.svc.spec.breaker; b != nil {
		if st.brk.word.Load()&3 == circuitClosed {
			return ready
		}
		if now < 0 {
			now = st.reg.clock()
		}
		return st.brk.admission(b, now)
	}
	return ready
}

// acquire reports whether a balancer may return m, claiming the half-open
// probe when the breaker allows one (only one caller wins it).
func (m *Member) acquire() bool { return m.quickReady() || m.acquireSlow() }

func (m *Member) acquireSlow() bool {
	switch m.readiness() {
	case ready:
		return true
	case probeReady:
		return m.st.brk.claimProbe(m.svc.spec.breaker, m.st.reg.clock())
	}
	return false
}

// MemberStatus is one target in the admin API's /services/{name}/health.
type MemberStatus struct {
	URL       string  `json:"url"`
	Weight    int     `json:"weight"`
	Healthy   bool    `json:"healthy"`
	Circuit   string  `json:"circuit"` // closed | open | half_open
	InFlight  int64   `json:"in_flight"`
	LatencyMs float64 `json:"latency_ms"` // moving average of successful requests
}

func (m *Member) status() MemberStatus {
	st := m.st
	circuit := circuitNames[circuitClosed]
	if m.svc.spec.breaker != nil {
		circuit = circuitNames[st.brk.state()]
	}
	return MemberStatus{
		URL:       m.t.url,
		Weight:    m.weight,
		Healthy:   st.healthy(),
		Circuit:   circuit,
		InFlight:  st.inflight.Load(),
		LatencyMs: float64(st.latency.Load()) / float64(time.Millisecond),
	}
}
