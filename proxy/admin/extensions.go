package admin

import (
	"net/http"
	"sync"
)

var (
	extMu sync.Mutex
	exts  = map[string]http.HandlerFunc{}
)

// Register adds an admin endpoint from a plugin package (the cache's
// purge API, for example), with a Go 1.22 mux pattern such as
// "POST /cache/purge". Call it from an init function. The endpoint sits
// behind the admin token like every other.
func Register(pattern string, h http.HandlerFunc) {
	extMu.Lock()
	defer extMu.Unlock()
	exts[pattern] = h
}

func registerExtensions(mux *http.ServeMux) {
	extMu.Lock()
	defer extMu.Unlock()
	for p, h := range exts {
		mux.HandleFunc(p, h)
	}
}
