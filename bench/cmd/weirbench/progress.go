package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progressMu guards the progress line and everything printed on stderr
// while it is shown.
var (
	progressMu    sync.Mutex
	progressShown bool
)

// progress prints what runs now and how long is left: on a terminal one
// line rewritten every second, elsewhere (CI logs, make output piped) one
// line per run.
type progress struct {
	w       io.Writer
	tty     bool
	steps   []step
	dur     time.Duration
	warm    time.Duration
	current int
	began   time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newProgress(w io.Writer, steps []step, dur, warm time.Duration) *progress {
	p := &progress{w: w, steps: steps, dur: dur, warm: warm, current: -1, stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	if p.tty {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-t.C:
					p.draw()
				}
			}
		}()
	}
	return p
}

func (p *progress) stepLen(s step) time.Duration {
	if s.phase == "warmup" {
		return p.warm + perRunOverhead
	}
	return p.dur + perRunOverhead
}

// left estimates the time to the end: the rest of the current run and
// every run after it.
func (p *progress) left() time.Duration {
	var d time.Duration
	for i := p.current + 1; i < len(p.steps); i++ {
		d += p.stepLen(p.steps[i])
	}
	if p.current >= 0 && p.current < len(p.steps) {
		if rest := p.stepLen(p.steps[p.current]) - time.Since(p.began); rest > 0 {
			d += rest
		}
	}
	return d
}

func (p *progress) line() string {
	if p.current < 0 || p.current >= len(p.steps) {
		return ""
	}
	s := p.steps[p.current]
	what := s.phase
	switch s.phase {
	case "max":
		what = fmt.Sprintf("max RPS, round %d", s.round)
	case "latency":
		what = fmt.Sprintf("latency at %d%%, round %d", s.load, s.round)
	case "accuracy":
		what = fmt.Sprintf("rate-limit accuracy, round %d", s.round)
	}
	left := p.left().Round(time.Second)
	return fmt.Sprintf("[%d/%d] %-22s %-34s %s left", p.current+1, len(p.steps), s.cell.label(), what, fmtDur(left))
}

func (p *progress) draw() {
	progressMu.Lock()
	defer progressMu.Unlock()
	if l := p.line(); l != "" {
		fmt.Fprintf(p.w, "\r\033[K%s", l)
		progressShown = true
	}
}

// begin marks step i as running.
func (p *progress) begin(i int, s step) {
	progressMu.Lock()
	p.current, p.began = i, time.Now()
	progressMu.Unlock()
	if p.tty {
		p.draw()
		return
	}
	progressMu.Lock()
	fmt.Fprintln(p.w, p.line())
	progressMu.Unlock()
}

func (p *progress) finish() {
	select {
	case <-p.stop:
		return
	default:
		close(p.stop)
	}
	p.wg.Wait()
	progressMu.Lock()
	defer progressMu.Unlock()
	if progressShown {
		fmt.Fprint(p.w, "\r\033[K")
		progressShown = false
	}
}

func fmtDur(d time.Duration) string {
	m := int(d / time.Minute)
	s := int((d % time.Minute) / time.Second)
	return fmt.Sprintf("%dm%02ds", m, s)
}
