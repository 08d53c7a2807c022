package wasm

import (
	"bytes"
	"context"
	"log/slog"
)

// maxLogLine bounds one line of guest output kept before it is logged.
const maxLogLine = 4096

// logWriter turns a guest's stdout or stderr (WASI fd_write) into log
// lines. It belongs to one instance, whose calls are serialised, so it
// needs no lock.
type logWriter struct {
	log    *slog.Logger
	level  slog.Level
	stream string
	line   []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(w.line)
			if len(p) > room {
				w.line = append(w.line, p[:room]...)
				w.flush()
				p = p[room:]
				continue
			}
			w.line = append(w.line, p...)
			break
		}
		w.line = append(w.line, p[:min(i, maxLogLine-len(w.line))]...)
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *logWriter) flush() {
	if len(w.line) > 0 && w.log.Enabled(context.Background(), w.level) {
		w.log.Log(context.Background(), w.level, string(w.line), "stream", w.stream)
	}
	w.line = w.line[:0]
}
