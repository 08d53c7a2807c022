package sdk

import (
	"errors"
	"io"
)

// ErrBodyTooLarge is returned by a LimitedBody once the body passes its
// limit; the proxy answers 413 when a forward fails with it.
var ErrBodyTooLarge = errors.New("request body too large")

// LimitedBody counts a streamed request body on its way upstream and fails
// once it passes Max bytes, before the excess is sent. Embed it in pooled
// state rather than allocating one per request.
type LimitedBody struct {
	R        io.Reader
	Left     int64
	Exceeded bool
}

// Reset points l at r with a limit of max bytes.
func (l *LimitedBody) Reset(r io.Reader, max int64) { *l = LimitedBody{R: r, Left: max} }

// Read reads at most one byte past the limit, to tell "exactly the limit"
// from "over it".
func (l *LimitedBody) Read(p []byte) (int, error) {
	if l.Exceeded {
		return 0, ErrBodyTooLarge
	}
	if int64(len(p)) > l.Left+1 {
		p = p[:l.Left+1]
	}
	n, err := l.R.Read(p)
	l.Left -= int64(n)
	if l.Left < 0 {
		l.Exceeded = true
		return 0, ErrBodyTooLarge
	}
	return n, err
}
