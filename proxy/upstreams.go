package proxy

import (
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/weirgw/weir/proxy/transport"
)

// upstreams keeps one transport (connection pool) per upstream URL and
// settings, shared by every snapshot that uses it, so a reload keeps warm
// connections (DESIGN.md: the registry outlives snapshots). Entries are
// reference counted by snapshots and closed when the last one retires.
type upstreams struct {
	mu      sync.Mutex
	entries map[string]*upstreamEntry
}

type upstreamEntry struct {
	t    *transport.Transport
	refs int
}

func newUpstreams() *upstreams { return &upstreams{entries: map[string]*upstreamEntry{}} }

// acquire returns the transport for rawURL with cfg, creating it.
func (u *upstreams) acquire(rawURL string, cfg transport.Config) (*transport.Transport, error) {
	pu, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.Addr = pu.Host
	cfg.TLS = pu.Scheme == "https"
	if !strings.Contains(cfg.Addr, ":") || strings.HasSuffix(cfg.Addr, "]") {
		if cfg.TLS {
			cfg.Addr += ":443"
		} else {
			cfg.Addr += ":80"
		}
	}
	key := transportKey(cfg)
	u.mu.Lock()
	defer u.mu.Unlock()
	if e, ok := u.entries[key]; ok {
		e.refs++
		return e.t, nil
	}
	e := &upstreamEntry{t: transport.New(cfg), refs: 1}
	u.entries[key] = e
	return e.t, nil
}

// release drops one reference; the last closes the transport.
func (u *upstreams) release(t *transport.Transport) {
	key := transportKey(t.Config())
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.entries[key]
	if !ok || e.t != t {
		return
	}
	e.refs--
	if e.refs <= 0 {
		delete(u.entries, key)
		t.Close()
	}
}

func (u *upstreams) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, e := range u.entries {
		e.t.Close()
		delete(u.entries, k)
	}
}

func transportKey(c transport.Config) string {
	var b strings.Builder
	b.WriteString(c.Addr)
	if c.TLS {
		b.WriteString("|tls")
	}
	b.WriteString("|")
	b.WriteString(c.ConnectTimeout.String())
	b.WriteString("|")
	b.WriteString(strconv.Itoa(c.MaxConns))
	b.WriteString("|")
	b.WriteString(c.MaxConnWait.String())
	b.WriteString("|")
	b.WriteString(strconv.Itoa(c.StreamThreshold))
	return b.String()
}
