package sdk

import (
	"fmt"
	"sort"
	"sync"
)

// AdminEndpoint is an admin API route a plugin adds, the way a plugin
// adds a filter: registered from its package's init, served by the
// gateway's admin listener behind the admin token like every other route.
// The plugin sees the request body and answers a status and a JSON body;
// it imports nothing of the admin server.
type AdminEndpoint struct {
	// Pattern is a Go 1.22 mux pattern, method and path:
	// "POST /cache/purge".
	Pattern string
	// MaxBody bounds the request body; a larger one is answered 413
	// before Handle runs.
	MaxBody int64
	// Handle answers the request: an HTTP status and a JSON body.
	Handle func(body []byte) (status int, json []byte)
}

var (
	adminMu        sync.Mutex
	adminEndpoints = map[string]AdminEndpoint{}
)

// RegisterAdmin adds an admin endpoint. Call it from an init function;
// registering a pattern twice is a programmer bug and panics.
func RegisterAdmin(e AdminEndpoint) {
	if e.Pattern == "" || e.Handle == nil || e.MaxBody <= 0 {
		panic("sdk: RegisterAdmin needs a Pattern, a MaxBody and a Handle function")
	}
	adminMu.Lock()
	defer adminMu.Unlock()
	if _, dup := adminEndpoints[e.Pattern]; dup {
		panic(fmt.Sprintf("sdk: admin endpoint %q registered twice", e.Pattern))
	}
	adminEndpoints[e.Pattern] = e
}

// AdminEndpoints lists the registered admin endpoints, sorted by pattern.
func AdminEndpoints() []AdminEndpoint {
	adminMu.Lock()
	defer adminMu.Unlock()
	out := make([]AdminEndpoint, 0, len(adminEndpoints))
	for _, e := range adminEndpoints {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}
