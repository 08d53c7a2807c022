package proxy

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/sdk"
)

// RouteStats is a live view of one route for the status page.
type RouteStats struct {
	Name     string   `json:"name"`
	Service  string   `json:"service"`
	Paths    []string `json:"paths"`
	Requests uint64   `json:"requests"`
	Status2  uint64   `json:"2xx"`
	Status3  uint64   `json:"3xx"`
	Status4  uint64   `json:"4xx"`
	Status5  uint64   `json:"5xx"`
	// ErrorRate is the share of 5xx answers, 0 to 1.
	ErrorRate float64 `json:"error_rate"`
	// P50Ms and P99Ms are latency quantiles (client-seen, whole request)
	// since the process started, from the route's histogram; null
	// before the first request.
	P50Ms *float64 `json:"p50_ms"`
	P99Ms *float64 `json:"p99_ms"`
}

// ServiceStats lists a service's targets and their health.
type ServiceStats struct {
	Name    string              `json:"name"`
	Targets []pool.MemberStatus `json:"targets"`
}

// Stats is what the status page polls (GET /stats).
type Stats struct {
	ConfigVersion  int64     `json:"config_version"`
	ConfigSource   string    `json:"config_source"`
	ConfigLoadedAt time.Time `json:"config_loaded_at"`
	// LastReloadOK is the outcome of the last reload (file or admin
	// write); Reloads counts them by outcome since the start.
	LastReloadOK bool              `json:"last_reload_successful"`
	Reloads      map[string]uint64 `json:"reloads"`
	// Unmatched counts requests no route took, by status: "404" (no
	// route) and "405" (a route's path, not its method).
	Unmatched map[string]uint64 `json:"unmatched"`
	Routes    []RouteStats      `json:"routes"`
	Services  []ServiceStats    `json:"services"`
	// TopRoutes are the 10 routes with the most requests; TopConsumers
	// the 10 consumers, when analytics.consumers is on (else empty).
	TopRoutes    []TopEntry `json:"top_routes"`
	TopConsumers []TopEntry `json:"top_consumers"`
}

// topLen is how many routes and consumers the status page's top lists hold.
const topLen = 10

// unmatchedCounter is the weir_requests_total series of requests no route
// took, with status 404 or 405.
func unmatchedCounter(status string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`weir_requests_total{route="_none",service="_none",status="` + status + `"}`)
}

// Stats reads the counters of the current snapshot. Counters survive
// reloads (they are keyed by name), so totals are monotonic per route name.
func (s *Server) Stats() Stats {
	snap := s.cur.Load()
	out := Stats{
		ConfigVersion:  snap.Version,
		ConfigSource:   snap.Source,
		ConfigLoadedAt: snap.Loaded.UTC(),
		LastReloadOK:   s.lastReloadGood.Load(),
		Reloads:        map[string]uint64{"success": s.reloadOK.Get(), "failure": s.reloadFailed.Get()},
		Unmatched:      map[string]uint64{"404": unmatchedCounter("404").Get(), "405": unmatchedCounter("405").Get()},
	}
	for i, r := range snap.routes {
		rs := RouteStats{Name: r.name, Paths: snap.Config.Routes[i].Paths}
		if r.svc != nil {
			rs.Service = r.svc.name
		}
		for code := 100; code < 600; code++ {
			c := r.m.counter(code)
			if c == nil {
				continue
			}
			n := c.Get()
			rs.Requests += n
			switch code / 100 {
			case 2:
				rs.Status2 += n
			case 3:
				rs.Status3 += n
			case 4:
				rs.Status4 += n
			case 5:
				rs.Status5 += n
			}
		}
		if rs.Requests > 0 {
			rs.ErrorRate = float64(rs.Status5) / float64(rs.Requests)
		}
		if r.m.duration != nil {
			rs.P50Ms = quantileMs(r.m.duration, 0.5)
			rs.P99Ms = quantileMs(r.m.duration, 0.99)
		}
		out.Routes = append(out.Routes, rs)
	}
	top := make([]TopEntry, 0, len(out.Routes))
	for _, rs := range out.Routes {
		if rs.Requests > 0 {
			top = append(top, TopEntry{rs.Name, rs.Requests})
		}
	}
	out.TopRoutes = topN(top, topLen)
	out.TopConsumers = []TopEntry{}
	if s.consumers.on.Load() {
		out.TopConsumers = s.consumers.top(topLen)
	}
	for _, sc := range snap.Config.Services {
		if svc := snap.services[sc.Name]; svc != nil {
			out.Services = append(out.Services, ServiceStats{Name: sc.Name, Targets: svc.p.Status()})
		}
	}
	return out
}

func quantileMs(h *sdk.Histogram, q float64) *float64 {
	v, ok := h.Quantile(q)
	if !ok {
		return nil
	}
	v *= 1000
	return &v
}
