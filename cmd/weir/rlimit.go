package main

import (
	"log/slog"
	"syscall"
)

// raiseFileLimit raises the soft limit on open files to the hard one and
// logs both. Every client connection costs a descriptor, and the usual
// soft limit of 1024 is reached long before memory or CPU are. Go already
// does this at start on Linux; doing it here as well keeps it true under
// a runtime that does not, and the log line tells an operator the limit
// the gateway really runs with (only the hard limit, `ulimit -Hn`, or
// LimitNOFILE= under systemd, raises it).
func raiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("reading the open file limit", "error", err.Error())
		return
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			log.Warn("raising the open file limit to the hard limit", "soft", lim.Cur, "hard", lim.Max, "error", err.Error())
		} else {
			lim = raised
		}
	}
	log.Info("open file limit", "soft", lim.Cur, "hard", lim.Max)
}
