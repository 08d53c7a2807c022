package acceptretry

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// script is a listener whose Accept returns the errors it is given, one a
// call, then a connection.
type script struct {
	net.Listener
	errs []error
	got  []time.Time
}

func (s *script) Accept() (net.Conn, error) {
	s.got = append(s.got, time.Now())
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return nil, err
	}
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func (s *script) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func TestRetriesWithBackoffAndRecovers(t *testing.T) {
	var st State
	in := &script{errs: []error{emfile(), emfile(), emfile(), emfile()}}
	l := &Listener{Listener: in, State: &st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	before := reasons[0].count.Get()

	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	c.Close()
	if got := reasons[0].count.Get() - before; got != 4 {
		t.Errorf("counted %d refusals, want 4", got)
	}
	// 5, 10, 20 and 40 ms between the five tries.
	for i, want := range []time.Duration{5, 10, 20, 40} {
		if gap := in.got[i+1].Sub(in.got[i]); gap < want*time.Millisecond {
			t.Errorf("wait %d was %v, want at least %v ms", i, gap, want)
		}
	}
	if ok, _ := st.Accepting(); !ok {
		t.Error("still not accepting after an accept succeeded")
	}
}

func TestStateWhileRefused(t *testing.T) {
	var st State
	l := &Listener{Listener: &script{}, State: &st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, ok := l.refuse(emfile()); !ok {
		t.Fatal("EMFILE not retried")
	}
	if ok, msg := st.Accepting(); ok || msg != "too many open files" {
		t.Errorf("Accepting() = %v, %q during an episode", ok, msg)
	}
	// A listener refused long ago and since waiting in accept would take
	// a connection: it no longer counts as failing.
	st.lastAt.Store(time.Now().Add(-failingFor - time.Second).UnixNano())
	if ok, _ := st.Accepting(); !ok {
		t.Error("still failing long after the last refusal")
	}
}

func TestDelayIsCapped(t *testing.T) {
	l := &Listener{Listener: &script{}, State: new(State), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var d time.Duration
	for range 20 {
		d, _ = l.refuse(emfile())
	}
	if d != maxDelay {
		t.Errorf("delay after 20 refusals = %v, want %v", d, maxDelay)
	}
}

func TestOtherErrorsPassThrough(t *testing.T) {
	for _, err := range []error{net.ErrClosed, io.EOF, errors.New("boom"),
		&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EINVAL)}} {
		var st State
		l := &Listener{Listener: &script{errs: []error{err}}, State: &st, Log: slog.Default()}
		if _, got := l.Accept(); got != err {
			t.Errorf("Accept with %v returned %v", err, got)
		}
		if ok, _ := st.Accepting(); !ok {
			t.Errorf("%v made the state not accepting", err)
		}
	}
}

func TestAbortedConnectionIsOnlyCounted(t *testing.T) {
	var st State
	aborted := &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}
	l := &Listener{Listener: &script{}, State: &st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	before := reasons[4].count.Get()
	if d, ok := l.refuse(aborted); !ok || d != 0 {
		t.Errorf("refuse(ECONNABORTED) = %v, %v; want an immediate retry", d, ok)
	}
	if reasons[4].count.Get() != before+1 {
		t.Error("ECONNABORTED not counted")
	}
	if ok, _ := st.Accepting(); !ok || l.inside.Load() {
		t.Error("an aborted connection began an episode")
	}
}
