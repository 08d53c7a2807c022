package oauth2introspection

import "sync"

// flight makes concurrent requests for the same token share one
// introspection (golang.org/x/sync/singleflight, specialised to our key
// and kept here to avoid a module for forty lines).
type flight struct {
	mu    sync.Mutex
	calls map[[32]byte]*call
}

type call struct {
	done chan struct{}
	e    *entry
	err  error
}

// do runs fn for key unless a call for key is already running, in which
// case it waits for that call's result. shared reports the latter.
func (g *flight) do(key [32]byte, fn func() (*entry, error)) (e *entry, err error, shared bool) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[[32]byte]*call{}
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		<-c.done
		return c.e, c.err, true
	}
	c := &call{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.e, c.err = fn()
	return c.e, c.err, false
}
