package admin

import (
	"net/http"

	"github.com/weirgw/weir/sdk"
)

// registerExtensions serves the admin endpoints plugins registered through
// sdk.RegisterAdmin (the cache's purge API, for example), behind the admin
// token like every other route.
func registerExtensions(mux *http.ServeMux) {
	for _, e := range sdk.AdminEndpoints() {
		mux.HandleFunc(e.Pattern, func(w http.ResponseWriter, r *http.Request) {
			body, ok := ReadBody(w, r, e.MaxBody)
			if !ok {
				return
			}
			status, out := e.Handle(body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(out)
		})
	}
}
