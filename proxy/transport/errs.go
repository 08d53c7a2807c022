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
