package admin

import (
	"fmt"
	"net/http"

	"github.com/weirgw/weir/proxy/config"
)

// The writes of one consumer (POST /consumers, PUT and DELETE
// /consumers/NAME) do not take the path of the other objects (clone the
// whole config, validate it, compile it): at a hundred thousand consumers
// that re-read every consumer for each one added (issue 17). They build
// the next config from the running one, sharing every part but the
// consumer list, check the one consumer (as a file would be checked:
// every error, with its place), unmask its secrets against the running
// consumer of its name, and hand the change to Server.ApplyConsumer,
// which updates the consumers and the credential indexes instead of
// rebuilding them and keeps every plugin instance that does not hold what
// it read from consumers. The ETag follows the change (etag.go). Adding a
// consumer costs the same at ten thousand consumers as at a hundred
// thousand (BenchmarkAdminAddConsumerAt10K, ...At100K); replacing or
// deleting one copies the list of consumers once (a memmove, no
// per-consumer work), with room for the POSTs that follow.

func (a *Admin) consumerWrites(mux *http.ServeMux) {
	mux.HandleFunc("POST /consumers", func(w http.ResponseWriter, r *http.Request) { a.writeConsumer(w, r, "", true) })
	mux.HandleFunc("PUT /consumers/{name}", func(w http.ResponseWriter, r *http.Request) {
		a.writeConsumer(w, r, r.PathValue("name"), false)
	})
	mux.HandleFunc("DELETE /consumers/{name}", a.deleteConsumer)
}

func (a *Admin) writeConsumer(w http.ResponseWriter, r *http.Request, name string, mustBeNew bool) {
	body, ok := ReadBody(w, r, maxObjectBody)
	if !ok {
		return
	}
	file := bodyName(r)
	var x config.Consumer
	if err := decodeNamed(file, body, &x, &x.Name, name); err != nil {
		writeConfigErrors(w, err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	snap := a.srv.Current()
	running := snap.Config
	next := *running
	i := -1
	if snap.HasConsumer(x.Name) {
		if mustBeNew {
			writeError(w, http.StatusConflict, fmt.Sprintf("a consumer named %q exists; use PUT /consumers/%s", x.Name, x.Name))
			return
		}
		i = consumerIndex(running, x.Name)
	}
	var old *config.Consumer
	if i >= 0 {
		old = &running.Consumers[i]
		next.Consumers = copyWithRoom(running.Consumers, -1)
		next.Consumers[i] = x
	} else {
		i = len(running.Consumers)
		next.Consumers = a.appendConsumer(running.Consumers, x)
	}
	// The consumer may have been read from GET with its secrets masked.
	if err := config.UnmaskConsumer(&next.Consumers[i], old, i, file); err != nil {
		writeConfigErrors(w, err)
		return
	}
	status := http.StatusOK
	if mustBeNew {
		status = http.StatusCreated
	}
	a.applyConsumer(w, &next, old, i, status, config.MaskedConsumer(&next.Consumers[i]))
}

func (a *Admin) deleteConsumer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a.mu.Lock()
	defer a.mu.Unlock()
	snap := a.srv.Current()
	if !snap.HasConsumer(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no consumer named %q", name))
		return
	}
	running := snap.Config
	i := consumerIndex(running, name)
	next := *running
	next.Consumers = copyWithRoom(running.Consumers, i)
	a.applyConsumer(w, &next, &running.Consumers[i], -1, http.StatusOK, map[string]any{"deleted": name})
}

// applyConsumer is apply for a change of one consumer (Server.ApplyConsumer).
func (a *Admin) applyConsumer(w http.ResponseWriter, cfg *config.Config, old *config.Consumer, i int, status int, result any) {
	if !a.preconditionHolds(w) {
		return
	}
	before := a.srv.Current()
	if err := a.srv.ApplyConsumer(cfg, old, i, "admin API"); err != nil {
		writeConfigErrors(w, err)
		return
	}
	snap := a.srv.Current()
	var added *config.Consumer
	if i >= 0 {
		added = &cfg.Consumers[i]
	}
	a.etags.changed(before, snap, old, added)
	a.grown = cfg.Consumers
	if a.opts.Cluster != nil {
		_ = a.opts.Cluster.Publish(cfg) // a failure is logged; the change stands on this node
	}
	w.Header().Set("ETag", a.etags.of(snap))
	writeJSON(w, status, result)
}

// appendConsumer appends x to list. The list of the running config is
// grown in place when it was made by the last append here and has room:
// the running config reads only up to its length, and a write refused
// left nothing that anyone reads in the slot. Otherwise the list is
// copied with room to grow, so appends cost O(1) amortized.
func (a *Admin) appendConsumer(list []config.Consumer, x config.Consumer) []config.Consumer {
	if len(list) < cap(list) && len(list) == len(a.grown) && len(list) > 0 && &list[0] == &a.grown[0] {
		return append(list, x)
	}
	return append(copyWithRoom(list, -1), x)
}

// copyWithRoom copies list without its element skip (-1: none), with
// room for the appends that may follow (appendConsumer grows it in place).
func copyWithRoom(list []config.Consumer, skip int) []config.Consumer {
	n := make([]config.Consumer, 0, len(list)+len(list)/4+16)
	if skip < 0 {
		return append(n, list...)
	}
	return append(append(n, list[:skip]...), list[skip+1:]...)
}

// consumerIndex is the place of the consumer named name in cfg, which has
// one.
func consumerIndex(cfg *config.Config, name string) int {
	for i := range cfg.Consumers {
		if cfg.Consumers[i].Name == name {
			return i
		}
	}
	return -1
}
