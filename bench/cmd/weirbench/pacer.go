package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pacer sleeps with microsecond precision. time.Sleep is not good enough
// for the open-loop schedule: when the Go scheduler has nothing to run it
// waits in epoll with a millisecond timeout, so a 100 µs sleep takes about
// a millisecond, and every request would start up to a millisecond late
// (and be measured that much slower, since latency counts from the
// intended time). A timerfd read through the runtime's poller wakes the
// goroutine when the kernel timer fires instead: about 30 µs late on an
// idle machine. One pacer belongs to one goroutine.
type pacer struct {
	fd  int
	f   *os.File
	buf [8]byte
}

// minPace is the shortest sleep: it bounds the dispatcher's wake-ups to
// 20,000 a second, whose cost lands on the load CPU shared with the
// backend, at the price of releasing requests up to 50 µs late.
const minPace = 50 * time.Microsecond

func newPacer() (*pacer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// A non-blocking descriptor makes the File pollable: Read parks the
	// goroutine in the runtime's poller instead of blocking a thread.
	return &pacer{fd: fd, f: os.NewFile(uintptr(fd), "weirbench-timerfd")}, nil
}

func (p *pacer) sleep(d time.Duration) error {
	if d < minPace {
		d = minPace
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(p.fd, 0, &spec, nil); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	if _, err := p.f.Read(p.buf[:]); err != nil {
		return fmt.Errorf("read timerfd: %w", err)
	}
	return nil
}

func (p *pacer) close() { _ = p.f.Close() }
