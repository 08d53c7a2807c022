package proxy

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/proxy/config"
)

// discovery runs one DNS watcher per service that has a discovery section
// and keeps the targets each last found. The targets are an overlay on the
// config, not part of it: every compile adds them to the service's static
// targets (buildService), so a file reload or an admin write keeps them,
// and GET /config shows only what the operator wrote.
//
// A change of a service's discovered targets recompiles the running config
// with the new overlay and swaps it in, the path a target added through
// the admin API takes: the pool registry keeps the surviving targets'
// connections, health and breaker state, and requests in flight on a
// removed target finish on the retired snapshot.
type discovery struct {
	mu       sync.Mutex
	watchers map[string]*discWatch          // by service name
	found    map[string][]pool.TargetConfig // by service name: the last known targets
}

type discWatch struct {
	cfg config.Discovery
	w   *pool.DNSWatcher
}

// discovered returns the last known targets of service name; compile adds
// them to its static ones.
func (s *Server) discovered(name string) []pool.TargetConfig {
	s.disc.mu.Lock()
	defer s.disc.mu.Unlock()
	return s.disc.found[name]
}

// watchDiscovery starts, restarts and stops watchers to match cfg, which
// has just been swapped in. The caller holds applyMu (or is New).
func (s *Server) watchDiscovery(cfg *config.Config) {
	s.disc.mu.Lock()
	defer s.disc.mu.Unlock()
	want := map[string]*config.Discovery{}
	for i := range cfg.Services {
		if d := cfg.Services[i].Discovery; d != nil {
			want[cfg.Services[i].Name] = d
		}
	}
	for name, dw := range maps.Clone(s.disc.watchers) {
		if d := want[name]; d == nil || *d != dw.cfg {
			dw.w.Stop()
			delete(s.disc.watchers, name)
			if d == nil {
				delete(s.disc.found, name)
			}
		}
	}
	for name, d := range want {
		if s.disc.watchers[name] != nil {
			continue
		}
		// A changed discovery section keeps the targets found with the old
		// one until the new one answers: a service is never emptied by
		// a reload.
		dw := &discWatch{cfg: *d}
		dc := s.dnsConfig(name, d)
		dc.Known = s.disc.found[name]
		dw.w = pool.WatchDNS(dc, func(ts []pool.TargetConfig) { s.rediscover(name, dw, ts) })
		s.disc.watchers[name] = dw
	}
}

func (s *Server) dnsConfig(name string, d *config.Discovery) pool.DNSConfig {
	return pool.DNSConfig{Service: name, Name: d.DNS, Type: d.Type, Port: d.Port, Scheme: d.Scheme,
		Interval: d.Interval.D(), Resolver: d.Resolver, Log: s.log}
}

// startResolveTimeout bounds the first resolution at start.
const startResolveTimeout = 2 * time.Second

// resolveAtStart resolves every service's name once before the first
// snapshot is compiled (New), all at once and for at most
// startResolveTimeout, so that a gateway serves its discovered targets from
// its first request instead of answering 503 until the watchers' first
// answers. A name that does not resolve in time is left to its watcher.
func (s *Server) resolveAtStart(cfg *config.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), startResolveTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range cfg.Services {
		name, d := cfg.Services[i].Name, cfg.Services[i].Discovery
		if d == nil {
			continue
		}
		wg.Go(func() {
			ts, err := pool.ResolveDNS(ctx, s.dnsConfig(name, d))
			if err != nil {
				s.log.Warn("dns discovery: the first resolution failed; the service starts without discovered targets",
					"service", name, "name", d.DNS, "error", err)
				return
			}
			s.disc.mu.Lock()
			s.disc.found[name] = ts
			s.disc.mu.Unlock()
		})
	}
	wg.Wait()
}

// rediscover records a service's new targets and swaps in a snapshot that
// has them.
func (s *Server) rediscover(name string, dw *discWatch, ts []pool.TargetConfig) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.closed.Load() {
		return
	}
	s.disc.mu.Lock()
	current := s.disc.watchers[name] == dw
	if current {
		s.disc.found[name] = ts
	}
	s.disc.mu.Unlock()
	if !current {
		return // stopped by a reload while it waited for applyMu
	}
	cur := s.cur.Load()
	// The same source keeps a config file's directory for plugins that
	// read files relative to it.
	if err := s.apply(cur.Config.Clone(), cur.Source); err != nil {
		s.log.Error("dns discovery: applying the new targets failed; they are kept for the next reload",
			"service", name, "error", err)
	}
}

// stopDiscovery stops every watcher and waits for them (Shutdown).
func (s *Server) stopDiscovery() {
	s.disc.mu.Lock()
	ws := make([]*discWatch, 0, len(s.disc.watchers))
	for name, dw := range s.disc.watchers {
		dw.w.Stop()
		ws = append(ws, dw)
		delete(s.disc.watchers, name)
	}
	s.disc.mu.Unlock()
	for _, dw := range ws {
		dw.w.Wait()
	}
}
