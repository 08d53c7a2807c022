// Package reuseport opens the TCP listeners of the weir binary — the proxy
// listeners and the admin listener — with SO_REUSEPORT, so a new weir
// binary can bind the same addresses while the old one drains: a
// zero-downtime upgrade is "start the new process, then SIGTERM the old
// one" (README.md, Operations).
package reuseport

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener on addr with SO_REUSEPORT set.
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	// Plain TCP, not Go's default of MPTCP where the kernel has it: a
	// listening MPTCP socket refuses socket filters (EOPNOTSUPP), and a
	// draining server filters out new SYNs before it closes its listener
	// (proxy/drain.go). The connections of clients without MPTCP, all of
	// them in practice, are plain TCP either way.
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), "tcp", addr)
}
