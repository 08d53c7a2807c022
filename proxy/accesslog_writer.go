package proxy

import (
	"bufio"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// The access log's writer. Requests format their line into a pooled
// buffer (accesslog.go) and hand it to a queue; one goroutine takes what
// is queued every 20 ms (alFlushEvery) and writes it to the sink through
// a 64 KiB buffer. The queue is bounded by access_log.buffer: a request that
// finds it full drops its line and counts it, so a slow disk or a stuck
// pipe never holds a request back.
//
// Control entries travel the same queue, in order with the lines: a
// reload that changes access_log.path sends the new sink (lines queued
// before it go to the old file, none is lost), SIGUSR1 sends a reopen
// (logrotate's rename-then-signal), Shutdown a stop.

var accessLogDropped = metrics.NewCounter(`weir_access_log_dropped_total`)

// alFlushEvery is how often the writer takes what is queued: lines reach
// the sink at most this late, and access_log.buffer must hold this long's
// worth of lines (8192 by default: 100k requests/s for 80 ms).
const alFlushEvery = 20 * time.Millisecond

// alQueueCap is the channel's capacity: the largest access_log.buffer
// plus room for control entries, which are not counted against it.
const alQueueCap = 1<<16 + 64

type alEntry struct {
	line   bool // b is a line; else a control entry
	b      []byte
	sink   *alSink // a switch to this sink
	reopen bool
	off    bool // close the sink: access_log was removed
	stop   chan struct{}
}

// alSink is an open access-log destination.
type alSink struct {
	path string // "stdout" or the file's path as opened
	f    *os.File
}

func openAccessLog(path string) (*alSink, error) {
	if path == "stdout" {
		return &alSink{path: path, f: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &alSink{path: path, f: f}, nil
}

func (k *alSink) close() {
	if k != nil && k.f != os.Stdout {
		_ = k.f.Close()
	}
}

type alWriter struct {
	q chan *alEntry
	// free holds the line buffers the writer is done with. A free list
	// rather than a sync.Pool: lines wait in the queue for up to a tick,
	// so a pool emptied by a burst (or by a GC) would allocate again;
	// the free list keeps as many buffers as were ever in flight.
	free    chan *alEntry
	pending atomic.Int64 // lines queued, against limit
	limit   atomic.Int64 // access_log.buffer of the running config
	log     *slog.Logger
	// path is the sink the last applied config asked for (Apply's
	// goroutine only): an unchanged path keeps the open file.
	path string
}

func newALWriter(log *slog.Logger) *alWriter {
	w := &alWriter{q: make(chan *alEntry, alQueueCap), free: make(chan *alEntry, alQueueCap), log: log}
	go w.run()
	return w
}

// enqueue hands a formatted line to the writer, or drops it when the
// queue holds limit lines already. It never blocks.
func (w *alWriter) enqueue(e *alEntry) {
	if w.pending.Add(1) > w.limit.Load() {
		w.pending.Add(-1)
		accessLogDropped.Inc()
		w.release(e)
		return
	}
	w.q <- e // cannot block: pending <= limit < alQueueCap
}

// control sends an entry that is not a line; the caller (a reload, a
// signal, Shutdown) may wait for room.
func (w *alWriter) control(e *alEntry) { w.q <- e }

// entry returns a line buffer to format into.
func (w *alWriter) entry() *alEntry {
	select {
	case e := <-w.free:
		return e
	default:
		return &alEntry{line: true, b: make([]byte, 0, 512)}
	}
}

func (w *alWriter) release(e *alEntry) {
	if cap(e.b) > 64<<10 {
		return // one huge line must not pin its buffer
	}
	e.b = e.b[:0]
	select {
	case w.free <- e:
	default:
	}
}

func (w *alWriter) run() {
	var (
		sink *alSink
		bw   = bufio.NewWriterSize(nil, 64<<10)
	)
	flush := func() {
		if sink != nil && bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				w.log.Warn("access log write failed", "path", sink.path, "error", err)
				bw.Reset(sink.f) // drop what could not be written rather than retry forever
			}
		}
	}
	handle := func(e *alEntry) (stop bool) {
		switch {
		case e.line:
			w.pending.Add(-1)
			if sink != nil {
				_, _ = bw.Write(e.b)
			}
			w.release(e)
		case e.sink != nil:
			flush()
			if e.sink != sink {
				sink.close()
			}
			sink = e.sink
			bw.Reset(sink.f)
		case e.off:
			flush()
			sink.close()
			sink = nil
		case e.reopen:
			if sink == nil || sink.f == os.Stdout {
				break
			}
			flush()
			n, err := openAccessLog(sink.path)
			if err != nil {
				w.log.Error("access log reopen failed; writing on to the old file", "path", sink.path, "error", err)
				break
			}
			sink.close()
			sink = n
			bw.Reset(sink.f)
		case e.stop != nil:
			flush()
			sink.close()
			close(e.stop)
			return true
		}
		return false
	}
	// The writer wakes on a tick, not per line: a request's send on the
	// buffered channel then wakes nobody, and each tick's lines go out in
	// one write (or one per 64 KiB). Waking per line cost a goroutine
	// switch and a write(2) per request under load.
	tick := time.NewTicker(alFlushEvery)
	defer tick.Stop()
	for {
		for n := len(w.q); n > 0; n-- {
			if handle(<-w.q) {
				return
			}
		}
		flush()
		<-tick.C
	}
}
