// Package admin is Weir's admin listener: the JSON admin API (SPEC.md,
// "Admin API"), Prometheus metrics, pprof and the status page.
//
// Every change made here goes through the same path as a file reload:
// clone the running config, change the clone, validate, compile, swap.
// An invalid change is refused whole with every error, and the running
// config stays.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// Options configure the admin listener.
type Options struct {
	Listen     string
	Token      string // bearer token; empty = no auth (config validation requires loopback then)
	Pprof      bool
	ConfigFile string
	Version    string
	Log        *slog.Logger
}

// Admin serves the admin API.
type Admin struct {
	srv   *proxy.Server
	opts  Options
	ln    net.Listener
	hs    *http.Server
	mu    sync.Mutex // serializes read-modify-apply cycles
	start time.Time
	sync  *clusterSync
}

const maxAdminBody = 16 << 20

// New binds the admin listener.
func New(srv *proxy.Server, opts Options) (*Admin, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, err
	}
	a := &Admin{srv: srv, opts: opts, ln: ln, start: time.Now()}
	a.hs = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	if rc := srv.Redis(); rc != nil {
		a.sync = newClusterSync(a, rc)
		a.sync.run()
	}
	return a, nil
}

// Addr is the bound address.
func (a *Admin) Addr() string { return a.ln.Addr().String() }

// Serve blocks until Shutdown.
func (a *Admin) Serve() error {
	err := a.hs.Serve(a.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listener.
func (a *Admin) Shutdown(ctx context.Context) error {
	if a.sync != nil {
		a.sync.stop()
	}
	return a.hs.Shutdown(ctx)
}

// Handler is the admin API as an http.Handler (tests).
func (a *Admin) Handler() http.Handler { return a.hs.Handler }

func (a *Admin) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", a.status)
	mux.HandleFunc("GET /config", a.getConfig)
	mux.HandleFunc("PUT /config", a.putConfig)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
	})
	mux.HandleFunc("GET /{$}", a.statusPage)
	mux.HandleFunc("GET /stats", a.stats)

	a.crud(mux, "services", serviceKind{})
	a.crud(mux, "routes", routeKind{})
	a.crud(mux, "consumers", consumerKind{})
	mux.HandleFunc("GET /services/{name}/health", a.serviceHealth)
	mux.HandleFunc("POST /services/{name}/targets", a.addTarget)
	mux.HandleFunc("DELETE /services/{name}/targets/{id...}", a.removeTarget)
	registerExtensions(mux)

	if a.opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return a.auth(mux)
}

// auth requires the bearer token on every endpoint when one is set.
func (a *Admin) auth(next http.Handler) http.Handler {
	if a.opts.Token == "" {
		return next
	}
	want := []byte("Bearer " + a.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weir-admin"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid admin token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Admin) status(w http.ResponseWriter, r *http.Request) {
	snap := a.srv.Current()
	writeJSON(w, http.StatusOK, map[string]any{
		"status":                 "ok",
		"version":                a.opts.Version,
		"config_version":         snap.Version,
		"config_source":          snap.Source,
		"config_loaded_at":       snap.Loaded.UTC().Format(time.RFC3339),
		"last_reload_successful": a.srv.LastReloadOK(),
		"routes":                 len(snap.Config.Routes),
		"services":               len(snap.Config.Services),
		"consumers":              len(snap.Config.Consumers),
		"uptime_seconds":         int64(time.Since(a.start).Seconds()),
	})
}

func (a *Admin) getConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.srv.Current().Config.Masked())
}

func (a *Admin) putConfig(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	name := "admin.json"
	if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "yaml") {
		name = "admin.yaml"
	}
	// No ${VAR} expansion from the admin API: it would let a token holder
	// read the gateway's environment back through GET /config. A
	// document with errors is still validated and its plugins built, so
	// the 400 lists every problem; a valid one is compiled by apply.
	cfg, err := config.Check(name, body, nil, proxy.PluginChecker(name))
	if err != nil {
		writeConfigErrors(w, err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apply(w, cfg, http.StatusOK, nil)
}

// apply validates and swaps cfg in; on success it answers status with
// result (or the new version).
func (a *Admin) apply(w http.ResponseWriter, cfg *config.Config, status int, result any) {
	if err := a.srv.Apply(cfg, "admin API"); err != nil {
		writeConfigErrors(w, err)
		return
	}
	if result == nil {
		result = map[string]any{"config_version": a.srv.Current().Version}
	}
	publishChange(a, cfg)
	writeJSON(w, status, result)
}

func (a *Admin) serviceHealth(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	svc := a.srv.Service(name)
	if svc == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service named %q", name))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"service": name, "targets": svc.Status()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"status": status, "error": msg})
}

// writeConfigErrors answers 400 with every error, one per array item.
func writeConfigErrors(w http.ResponseWriter, err error) {
	var list config.ErrorList
	var msgs []string
	if errors.As(err, &list) {
		for _, e := range list {
			msgs = append(msgs, e.Error())
		}
	} else {
		msgs = []string{err.Error()}
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "error": "invalid config", "errors": msgs})
}
