package proxy

import "github.com/weirgw/weir/pool"

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
}

// ServiceStats lists a service's targets and their health.
type ServiceStats struct {
	Name    string              `json:"name"`
	Targets []pool.MemberStatus `json:"targets"`
}

// Stats is what the status page polls.
type Stats struct {
	ConfigVersion int64          `json:"config_version"`
	Routes        []RouteStats   `json:"routes"`
	Services      []ServiceStats `json:"services"`
}

// Stats reads the counters of the current snapshot. Counters survive
// reloads (they are keyed by name), so totals are monotonic per route name.
func (s *Server) Stats() Stats {
	snap := s.cur.Load()
	out := Stats{ConfigVersion: snap.Version}
	for i, r := range snap.routes {
		rs := RouteStats{Name: r.name, Paths: snap.Config.Routes[i].Paths}
		if r.svc != nil {
			rs.Service = r.svc.name
		}
		for code := 100; code < 600; code++ {
			c := r.m.byStatus[code].Load()
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
		out.Routes = append(out.Routes, rs)
	}
	for _, sc := range snap.Config.Services {
		if svc := snap.services[sc.Name]; svc != nil {
			out.Services = append(out.Services, ServiceStats{Name: sc.Name, Targets: svc.p.Status()})
		}
	}
	return out
}
