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
// connections (docs/architecture.md: registries outlive snapshots). Entries are
// reference counted by snapshots and closed when the last one retires.
type upstreams struct {
	mu      sync.Mutex
	entries map[string]*upstreamEntry
	keys    map[*transport.Transport]string // the entry of each transport
}

type upstreamEntry struct {
	t    *transport.Transport
	refs int
}

func newUpstreams() *upstreams {
	return &upstreams{entries: map[string]*upstreamEntry{}, keys: map[*transport.Transport]string{}}
}

// acquire returns the transport for rawURL with cfg, creating it; an
// https:// target speaks TLS with ut (its id is part of the key: other
// TLS settings or files make another transport).
func (u *upstreams) acquire(rawURL string, cfg transport.Config, ut *upstreamTLS) (*transport.Transport, error) {
	pu, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.Addr = pu.Host
	tlsID := ""
	switch pu.Scheme {
	case "https":
		cfg.TLS, tlsID = ut.cfg, ut.id
	case "h2", "grpcs":
		cfg.TLS, tlsID = ut.cfg, ut.id
		cfg.HTTP2 = true
	case "h2c", "grpc":
		cfg.HTTP2 = true
	}
	if !strings.Contains(cfg.Addr, ":") || strings.HasSuffix(cfg.Addr, "]") {
		if cfg.TLS != nil {
			cfg.Addr += ":443"
		} else {
			cfg.Addr += ":80"
		}
	}
	key := transportKey(cfg, tlsID)
	u.mu.Lock()
	defer u.mu.Unlock()
	if e, ok := u.entries[key]; ok {
		e.refs++
		return e.t, nil
	}
	e := &upstreamEntry{t: transport.New(cfg), refs: 1}
	u.entries[key] = e
	u.keys[e.t] = key
	return e.t, nil
}

// release drops one reference; the last closes the transport.
func (u *upstreams) release(t *transport.Transport) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key, ok := u.keys[t]
	if !ok {
		return
	}
	e := u.entries[key]
	e.refs--
	if e.refs <= 0 {
		delete(u.entries, key)
		delete(u.keys, t)
		t.Close()
	}
}

func (u *upstreams) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, e := range u.entries {
		e.t.Close()
		delete(u.entries, k)
		delete(u.keys, e.t)
	}
}

func transportKey(c transport.Config, tlsID string) string {
	var b strings.Builder
	b.WriteString(c.Addr)
	if c.HTTP2 {
		b.WriteString("|h2")
	}
	if c.TLS != nil {
		b.WriteString("|tls:")
		b.WriteString(tlsID)
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
