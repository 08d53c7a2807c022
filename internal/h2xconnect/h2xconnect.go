// Package h2xconnect turns on RFC 8441 extended CONNECT (WebSocket over
// HTTP/2) in golang.org/x/net/http2's server, which keeps it off by
// default (golang/go#71128: browsers try WebSocket over HTTP/2 once a
// server advertises it, and a server whose WebSocket code cannot take it
// then breaks them). x/net reads the switch once, from GODEBUG
// (http2xconnect=1), in its package init, and has no other; so this
// package, imported for its side effect, adds it to GODEBUG before that
// init runs. Go initializes packages in import-path order among those
// whose imports are ready (the spec, "Package initialization"): this one
// needs only os and strings, which x/net/http2 needs as well, and its path
// ("github.com/...") sorts before "golang.org/x/net/http2", so it always
// runs first. An operator's own http2xconnect setting in GODEBUG stands.
package h2xconnect

import (
	"os"
	"strings"
)

func init() {
	g := os.Getenv("GODEBUG")
	if strings.Contains(g, "http2xconnect=") {
		return
	}
	if g != "" {
		g += ","
	}
	_ = os.Setenv("GODEBUG", g+"http2xconnect=1")
}
