package proxy

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
)

// The access log (README.md, "Access log"): one line per request, json
// or Apache/nginx combined, formatted in finish on the request's
// goroutine into a pooled buffer (no allocation) and written by one
// goroutine (accesslog_writer.go). The settings are compiled into the
// snapshot, so a request formats with one config; the sink belongs to
// the Server and outlives snapshots.

type alFormat uint8

const (
	alJSON alFormat = iota
	alCombined
)

// alField numbers config.AccessLogFields, in that order.
type alField uint8

const (
	fTime alField = iota
	fRequestID
	fClientIP
	fMethod
	fHost
	fPath
	fStatus
	fBytesSent
	fDurationMs
	fUpstreamMs
	fRoute
	fService
	fTarget
	fConsumer
	fUserAgent
	fReferer
	fCache
	fRatelimit
)

// accessLog is a snapshot's compiled access_log section.
type accessLog struct {
	format alFormat
	fields []alField
	// all: every request is logged; else one answered below 400 is when a
	// random uint64 falls below sample.
	all    bool
	sample uint64
	w      *alWriter
}

func compileAccessLog(a *config.AccessLog) *accessLog {
	if a == nil {
		return nil
	}
	al := &accessLog{}
	if a.Format == config.AccessLogCombined {
		al.format = alCombined
	}
	names := a.Fields
	if len(names) == 0 {
		names = config.AccessLogFields
	}
	for _, n := range names {
		if i := slices.Index(config.AccessLogFields, n); i >= 0 {
			al.fields = append(al.fields, alField(i))
		}
	}
	sample := 1.0
	if a.Sample != nil {
		sample = *a.Sample
	}
	al.all = sample >= 1
	al.sample = uint64(sample * math.MaxUint64)
	return al
}

// accessLogPath resolves access_log.path against the config's directory.
func accessLogPath(a *config.AccessLog, configDir string) string {
	p := a.Path
	if p == "" {
		p = config.AccessLogStdout
	}
	if p != config.AccessLogStdout && !filepath.IsAbs(p) && configDir != "" {
		p = filepath.Join(configDir, p)
	}
	return p
}

// checkAccessLogPath reports a file whose directory does not exist, the
// one mistake `weir validate` can find without creating the file.
func checkAccessLogPath(a *config.AccessLog, configDir string) error {
	if a == nil {
		return nil
	}
	p := accessLogPath(a, configDir)
	if p == config.AccessLogStdout {
		return nil
	}
	if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
		return fmt.Errorf("directory %s does not exist: create it or give another file", filepath.Dir(p))
	}
	return nil
}

// setAccessLog points the writer at the sink cfg asks for, before snap
// serves: a changed path opens the new file now (an error refuses the
// config) and switches the writer in order with the queued lines. The
// caller holds applyMu (or is New).
func (s *Server) setAccessLog(snap *Snapshot, cfg *config.Config, file string) error {
	a := cfg.AccessLog
	if a == nil {
		if s.alw != nil && s.alw.path != "" {
			s.alw.control(&alEntry{off: true})
			s.alw.path = ""
		}
		return nil
	}
	if s.alw == nil {
		s.alw = newALWriter(s.log)
	}
	w := s.alw
	path := accessLogPath(a, s.deps(false, file).configDir)
	if path != w.path {
		sink, err := openAccessLog(path)
		if err != nil {
			return config.ErrorList{&config.Error{File: file, Place: "access_log.path",
				Msg: fmt.Sprintf("opening the access log: %v; give a file Weir may write, or stdout", err)}}
		}
		w.control(&alEntry{sink: sink})
		w.path = path
	}
	w.limit.Store(int64(max(a.Buffer, 1)))
	snap.alog.w = w
	return nil
}

// ReopenAccessLog reopens the access-log file (SIGUSR1): logrotate
// renames the file, then signals; lines queued before the signal go to
// the renamed file, later ones to a new file at the configured path.
func (s *Server) ReopenAccessLog() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.alw != nil && s.alw.path != "" {
		s.alw.control(&alEntry{reopen: true})
	}
}

// stopAccessLog writes what is queued and closes the sink (Shutdown,
// once no request is left to log). A sink that does not take the lines
// (a pipe nobody reads) is given up on when ctx ends: a stuck log must
// not make a stuck shutdown.
func (s *Server) stopAccessLog(ctx context.Context) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.alw == nil {
		return
	}
	done := make(chan struct{})
	s.alw.control(&alEntry{stop: done})
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("access log: lines not written at shutdown; the sink does not take them", "path", s.alw.path)
	}
	s.alw = nil
}

// logRequest writes the request's access-log line, when the route and
// the sample say so.
func (al *accessLog) logRequest(s *Server, c *sdk.Ctx, st *reqState, total, upstream time.Duration) {
	rc := c.RequestCtx()
	status := rc.Response.StatusCode()
	if !al.all && status < 400 && rand.Uint64() >= al.sample {
		return
	}
	e := al.w.entry()
	if al.format == alJSON {
		e.b = al.appendJSON(e.b[:0], s, c, st, status, total, upstream)
	} else {
		e.b = appendCombined(e.b[:0], s, c, st, status)
	}
	al.w.enqueue(e)
}
