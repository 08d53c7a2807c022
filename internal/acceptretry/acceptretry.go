// Package acceptretry keeps a listener accepting through the accept errors
// that pass on their own: the process or the system out of file
// descriptors (EMFILE, ENFILE), the kernel out of buffers (ENOBUFS,
// ENOMEM), and a connection reset before it was taken (ECONNABORTED).
//
// fasthttp's accept loop treats every error but a timeout as permanent and
// returns, so a gateway at its open-file limit stopped serving for good
// while its admin listener still said it was fine. A Listener instead
// waits and tries again, as net/http does: 5 ms, doubling up to 1 s. The
// connection that could not be taken stays in the kernel's accept queue,
// so it is served once a descriptor is free.
//
// One refusal episode — from the first refused accept to the next accept
// that succeeds — is logged twice (when it begins and when it ends), not
// once per retry, and every refused accept is counted in
// weir_accept_errors_total{reason}. A State shared by a process's
// listeners tells the admin API whether they accept.
package acceptretry

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// The backoff between retries, as net/http's Server.Serve.
const (
	firstDelay = 5 * time.Millisecond
	maxDelay   = time.Second
)

// failingFor is how long after its last refused accept a listener still
// in an episode counts as failing. A listener whose accept keeps failing
// retries at least every maxDelay, so the refusals keep coming; once they
// stop, the listener is waiting in accept for a client, which it would
// take.
const failingFor = 2 * maxDelay

// reasons maps the retried errors to their metric label; the counters
// exist from the start so that a dashboard sees zeros, not gaps. An
// aborted connection says nothing about the listener (the next one in
// the queue is taken at once), so it is only counted: no wait, no
// episode. (Go's net package already retries it on Linux.)
var reasons = []struct {
	errno  syscall.Errno
	label  string
	count  *metrics.Counter
	lasted bool // whether the error lasts: wait, and run an episode
}{
	{syscall.EMFILE, "emfile", metrics.NewCounter(`weir_accept_errors_total{reason="emfile"}`), true},
	{syscall.ENFILE, "enfile", metrics.NewCounter(`weir_accept_errors_total{reason="enfile"}`), true},
	{syscall.ENOBUFS, "enobufs", metrics.NewCounter(`weir_accept_errors_total{reason="enobufs"}`), true},
	{syscall.ENOMEM, "enomem", metrics.NewCounter(`weir_accept_errors_total{reason="enomem"}`), true},
	{syscall.ECONNABORTED, "econnaborted", metrics.NewCounter(`weir_accept_errors_total{reason="econnaborted"}`), false},
}

// State is whether a process's listeners accept. The zero value is ready:
// accepting.
type State struct {
	failing atomic.Int32 // listeners in a refusal episode
	lastAt  atomic.Int64 // the last refused accept, Unix nanoseconds
	lastErr atomic.Pointer[string]
}

// Accepting reports false, with the last accept error, while a listener
// is in a refusal episode and was refused within failingFor.
func (s *State) Accepting() (ok bool, lastErr string) {
	if s.failing.Load() == 0 || time.Since(time.Unix(0, s.lastAt.Load())) > failingFor {
		return true, ""
	}
	if p := s.lastErr.Load(); p != nil {
		lastErr = *p
	}
	return false, lastErr
}

// Listener retries the accepts of the listener it wraps.
type Listener struct {
	net.Listener
	State *State
	Log   *slog.Logger

	// The episode: inside tells the success path, at the cost of one
	// load per connection, whether there is anything to end; the rest is
	// touched only on errors.
	inside  atomic.Bool
	mu      sync.Mutex
	delay   time.Duration
	refused int
	began   time.Time
}

// Accept returns the next connection, waiting out the errors that pass.
// Any other error (a closed listener among them) is returned as it is. A
// listener closed while Accept waits is noticed when the wait ends, at
// most maxDelay later.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if l.inside.Load() {
				l.end()
			}
			return c, nil
		}
		d, ok := l.refuse(err)
		if !ok {
			return nil, err
		}
		if d > 0 {
			time.Sleep(d)
		}
	}
}

// refuse counts a refused accept, begins an episode if none is running,
// and returns how long to wait before the next try (0: none); false for
// an error that is not retried.
func (l *Listener) refuse(err error) (time.Duration, bool) {
	i := 0
	for i < len(reasons) && !errors.Is(err, reasons[i].errno) {
		i++
	}
	if i == len(reasons) {
		return 0, false
	}
	reasons[i].count.Inc()
	if !reasons[i].lasted {
		return 0, true
	}
	msg := reasons[i].errno.Error()
	l.State.lastErr.Store(&msg)
	l.State.lastAt.Store(time.Now().UnixNano())

	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.inside.Load() {
		l.inside.Store(true)
		l.State.failing.Add(1)
		l.delay, l.refused, l.began = 0, 0, time.Now()
		l.Log.Error("accepting connections failed; retrying with backoff until it succeeds",
			"addr", l.Addr().String(), "reason", reasons[i].label, "error", err.Error())
	}
	l.refused++
	if l.delay == 0 {
		l.delay = firstDelay
	} else {
		l.delay = min(2*l.delay, maxDelay)
	}
	return l.delay, true
}

// end closes the episode after an accept succeeded.
func (l *Listener) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.inside.Load() {
		return
	}
	l.inside.Store(false)
	l.State.failing.Add(-1)
	l.Log.Info("accepting connections again", "addr", l.Addr().String(),
		"refused_accepts", l.refused, "after", time.Since(l.began).Round(time.Millisecond).String())
}
