package admin

import (
	"fmt"
	"net/http"

	"github.com/weirgw/weir/proxy/config"
)

// kind adapts one named list of the config (services, routes, consumers)
// to generic read handlers.
type kind interface {
	list(c *config.Config) any
	get(c *config.Config, name string) (any, bool)
}

// writableKind is a kind whose writes clone, change and apply the whole
// config (services, routes; consumers have writes of their own,
// consumers.go).
type writableKind interface {
	kind
	// put inserts or replaces the item read from body (file names it in
	// errors and picks its format, as for a config file); name is "" for
	// POST (taken from the body). It returns the item's name.
	put(c *config.Config, name, file string, body []byte, mustBeNew bool) (string, error)
	del(c *config.Config, name string) bool
}

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

func (a *Admin) crud(mux *http.ServeMux, path string, k kind) {
	mux.HandleFunc("GET /"+path, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"data": k.list(a.srv.Current().Config.Masked())})
	})
	mux.HandleFunc("GET /"+path+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := k.get(a.srv.Current().Config.Masked(), r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no %s named %q", path[:len(path)-1], r.PathValue("name")))
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	wk, ok := k.(writableKind)
	if !ok {
		a.consumerWrites(mux)
		return
	}
	write := func(w http.ResponseWriter, r *http.Request, name string, mustBeNew bool) {
		body, ok := ReadBody(w, r, maxObjectBody)
		if !ok {
			return
		}
		file := bodyName(r)
		a.mu.Lock()
		defer a.mu.Unlock()
		running := a.srv.Current().Config
		cfg := running.Clone()
		got, err := wk.put(cfg, name, file, body, mustBeNew)
		if err != nil {
			if ce, ok := err.(*conflictError); ok {
				writeError(w, http.StatusConflict, ce.msg)
				return
			}
			writeConfigErrors(w, err)
			return
		}
		// The item may have been read from GET with its secrets masked.
		if err := cfg.Unmask(running, file); err != nil {
			writeConfigErrors(w, err)
			return
		}
		v, _ := k.get(cfg.Masked(), got)
		status := http.StatusOK
		if mustBeNew {
			status = http.StatusCreated
		}
		a.apply(w, cfg, status, v)
	}
	mux.HandleFunc("POST /"+path, func(w http.ResponseWriter, r *http.Request) { write(w, r, "", true) })
	mux.HandleFunc("PUT /"+path+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		write(w, r, r.PathValue("name"), false)
	})
	mux.HandleFunc("DELETE /"+path+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		cfg := a.srv.Current().Config.Clone()
		if !wk.del(cfg, r.PathValue("name")) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no %s named %q", path[:len(path)-1], r.PathValue("name")))
			return
		}
		a.apply(w, cfg, http.StatusOK, map[string]any{"deleted": r.PathValue("name")})
	})
}

// decodeNamed reads body into v with the config file's reader (see
// config.ParseItem) and reconciles the name in the URL with the one in
// the body.
func decodeNamed(file string, body []byte, v any, nameInBody *string, urlName string) error {
	if err := config.ParseItem(file, body, v); err != nil {
		return err
	}
	if urlName != "" {
		if *nameInBody == "" {
			*nameInBody = urlName
		} else if *nameInBody != urlName {
			return fmt.Errorf("name %q in the body does not match %q in the URL", *nameInBody, urlName)
		}
	}
	if *nameInBody == "" {
		return fmt.Errorf("name is required")
	}
	return nil
}

type serviceKind struct{}

func (serviceKind) list(c *config.Config) any { return c.Services }
func (serviceKind) get(c *config.Config, name string) (any, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}
func (serviceKind) put(c *config.Config, name, file string, body []byte, mustBeNew bool) (string, error) {
	var s config.Service
	if err := decodeNamed(file, body, &s, &s.Name, name); err != nil {
		return "", err
	}
	for i := range c.Services {
		if c.Services[i].Name == s.Name {
			if mustBeNew {
				return "", &conflictError{fmt.Sprintf("a service named %q exists; use PUT /services/%s", s.Name, s.Name)}
			}
			c.Services[i] = s
			config.ApplyDefaults(c)
			return s.Name, nil
		}
	}
	c.Services = append(c.Services, s)
	config.ApplyDefaults(c)
	return s.Name, nil
}
func (serviceKind) del(c *config.Config, name string) bool {
	for i := range c.Services {
		if c.Services[i].Name == name {
			c.Services = append(c.Services[:i], c.Services[i+1:]...)
			return true
		}
	}
	return false
}

type routeKind struct{}

func (routeKind) list(c *config.Config) any { return c.Routes }
func (routeKind) get(c *config.Config, name string) (any, bool) {
	for _, r := range c.Routes {
		if r.Name == name {
			return r, true
		}
	}
	return nil, false
}
func (routeKind) put(c *config.Config, name, file string, body []byte, mustBeNew bool) (string, error) {
	var r config.Route
	if err := decodeNamed(file, body, &r, &r.Name, name); err != nil {
		return "", err
	}
	for i := range c.Routes {
		if c.Routes[i].Name == r.Name {
			if mustBeNew {
				return "", &conflictError{fmt.Sprintf("a route named %q exists; use PUT /routes/%s", r.Name, r.Name)}
			}
			c.Routes[i] = r
			config.ApplyDefaults(c)
			return r.Name, nil
		}
	}
	c.Routes = append(c.Routes, r)
	config.ApplyDefaults(c)
	return r.Name, nil
}
func (routeKind) del(c *config.Config, name string) bool {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			c.Routes = append(c.Routes[:i], c.Routes[i+1:]...)
			return true
		}
	}
	return false
}

type consumerKind struct{}

func (consumerKind) list(c *config.Config) any { return c.Consumers }
func (consumerKind) get(c *config.Config, name string) (any, bool) {
	for _, x := range c.Consumers {
		if x.Name == name {
			return x, true
		}
	}
	return nil, false
}
