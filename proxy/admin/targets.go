package admin

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/weirgw/weir/proxy/config"
)

// addTarget registers a target with a service (service discovery). Like
// every admin change it becomes part of the running config: the pool
// registry keeps the existing targets' connections and health.
func (a *Admin) addTarget(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, ok := ReadBody(w, r, maxObjectBody)
	if !ok {
		return
	}
	var t config.Target
	if err := config.ParseItem(bodyName(r), body, &t); err != nil {
		writeConfigErrors(w, err)
		return
	}
	if t.URL == "" {
		writeError(w, http.StatusBadRequest, "url is required, e.g. {\"url\": \"http://127.0.0.1:9003\", \"weight\": 100}")
		return
	}
	canon, err := config.CanonicalTargetURL(t.URL)
	if err != nil {
		writeError(w, http.StatusBadRequest, "url: "+err.Error())
		return
	}
	t.URL = canon // same rules as targets in the file
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, svc := a.cloneWithService(w, name)
	if svc == nil {
		return
	}
	for _, x := range svc.Targets {
		if x.URL == t.URL {
			writeError(w, http.StatusConflict, fmt.Sprintf("service %q already has target %q", name, t.URL))
			return
		}
	}
	svc.Targets = append(svc.Targets, t)
	config.ApplyDefaults(cfg)
	a.apply(w, cfg, http.StatusCreated, map[string]any{"service": name, "target": t.URL, "id": url.PathEscape(t.URL)})
}

// removeTarget deregisters a target; id is the target URL (path-escaped)
// or its host:port.
func (a *Admin) removeTarget(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	id, err := url.PathUnescape(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid target id")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, svc := a.cloneWithService(w, name)
	if svc == nil {
		return
	}
	for i, x := range svc.Targets {
		if x.URL == id || hostOf(x.URL) == id {
			svc.Targets = append(svc.Targets[:i], svc.Targets[i+1:]...)
			a.apply(w, cfg, http.StatusOK, map[string]any{"service": name, "deleted": x.URL})
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("service %q has no target %q", name, id))
}

// cloneWithService clones the running config and finds service name in
// the clone, answering 404 itself when there is none. The caller holds a.mu.
func (a *Admin) cloneWithService(w http.ResponseWriter, name string) (*config.Config, *config.Service) {
	cfg := a.srv.Current().Config.Clone()
	svc := findService(cfg, name)
	if svc == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service named %q", name))
	}
	return cfg, svc
}

func findService(cfg *config.Config, name string) *config.Service {
	for i := range cfg.Services {
		if cfg.Services[i].Name == name {
			return &cfg.Services[i]
		}
	}
	return nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
