package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ErrTimeout: the request's deadline passed before the response was read
// (504).
var ErrTimeout = fmt.Errorf("upstream did not answer in time: %w", os.ErrDeadlineExceeded)

// IsTimeout reports whether err is a deadline expiry (504 rather than 502).
func IsTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ClientBodyError: the request's body could not be read from its source
// (the client's stream) while the request was being sent, and the upstream
// took every byte it was given: the client sent broken chunked framing,
// closed mid-body, or stalled past its read timeout. Err is the read
// failure (sdk.ClientBodyStatus maps it to the client's answer). The try
// says nothing about the target, and the body is spent: it is not retried.
type ClientBodyError struct{ Err error }

func (e *ClientBodyError) Error() string {
	return "reading the request body from the client: " + e.Err.Error()
}
func (e *ClientBodyError) Unwrap() error { return e.Err }
