package main

import (
	"net/http"

	"github.com/weirgw/weir/plugins/cache"
	"github.com/weirgw/weir/proxy/admin"
)

// The cache plugin's purge API on the admin listener (behind the admin
// token): POST /cache/purge with {"url": ...}, {"prefix": ...} or
// {"tag": ...}. With Redis the purge reaches every node.
func init() {
	admin.Register("POST /cache/purge", func(w http.ResponseWriter, r *http.Request) {
		body, ok := admin.ReadBody(w, r, 1<<20)
		if !ok {
			return
		}
		status, out := cache.HandlePurge(body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(out)
	})
}
