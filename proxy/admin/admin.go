// Package admin is Weir's admin listener: the JSON admin API (README.md,
// "Operations"), Prometheus metrics, pprof and the status page.
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
	"github.com/weirgw/weir/internal/reuseport"
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
	// Cluster, when redis is configured, shares admin changes with the
	// other nodes.
	Cluster *Cluster
	// Lock serializes read-modify-apply cycles with the process's other
	// writers (cluster sync, file reloads); nil = a lock of its own.
	Lock *sync.Mutex
}

// Admin serves the admin API.
type Admin struct {
	srv   *proxy.Server
	opts  Options
	ln    net.Listener
	hs    *http.Server
	mu    *sync.Mutex // serializes read-modify-apply cycles (Options.Lock)
	start time.Time
	etags etagCache
	// grown is the consumer list of the last consumer write applied,
	// which the next may grow in place (appendConsumer); under mu.
	grown []config.Consumer
}

// maxAdminBody is the largest whole-config write (PUT /config, POST
// /config/diff): as large as a config file may be, which a million
// consumers need. maxObjectBody bounds the write of one object (a service,
// route, consumer or target): far below that, so a client cannot make the
// gateway buffer hundreds of megabytes through an endpoint that never
// needs them.
const (
	maxAdminBody  = config.MaxDocumentBytes
	maxObjectBody = 1 << 20
)

// New binds the admin listener.
func New(srv *proxy.Server, opts Options) (*Admin, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	// Prometheus reads a series without a # TYPE line as untyped: rate()
	// still works, but the type is lost to anything that shows it, and
	// tools that check the exposition (promtool) complain.
	metrics.ExposeMetadata(true)
	// SO_REUSEPORT, as the proxy listeners: during a zero-downtime
	// upgrade the old and the new process are bound to the same address.
	ln, err := reuseport.Listen(opts.Listen)
	if err != nil {
		return nil, err
	}
	if opts.Lock == nil {
		opts.Lock = new(sync.Mutex)
	}
	a := &Admin{srv: srv, opts: opts, ln: ln, start: time.Now(), mu: opts.Lock}
	a.etags.key = newETagKey()
	a.hs = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	return a, nil
}

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
	return a.hs.Shutdown(ctx)
}

// Handler is the admin API as an http.Handler (tests).
func (a *Admin) Handler() http.Handler { return a.hs.Handler }

func (a *Admin) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", a.status)
	mux.HandleFunc("GET /config", a.getConfig)
	mux.HandleFunc("PUT /config", a.putConfig)
	mux.HandleFunc("POST /config/diff", a.diffConfig)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w)
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
	return a.auth(a.conditional(mux))
}

// auth requires the bearer token on every endpoint when one is set.
func (a *Admin) auth(next http.Handler) http.Handler {
	if a.opts.Token == "" {
		return next
	}
	want := []byte("Bearer " + a.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The status page's shell holds no data and asks for the token
		// itself (a browser cannot send a bearer header on navigation);
		// everything it fetches stays behind the token.
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
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
	// A gateway whose listeners cannot accept serves nobody new: it is
	// not live, whatever else holds, and a load balancer should know.
	code, status := http.StatusOK, "ok"
	accepting, acceptErr := a.srv.Accepting()
	if !accepting {
		code, status = http.StatusServiceUnavailable, "unhealthy"
	}
	body := map[string]any{
		"status":                 status,
		"accepting":              accepting,
		"version":                a.opts.Version,
		"config_version":         snap.Version,
		"config_source":          snap.Source,
		"config_loaded_at":       snap.Loaded.UTC().Format(time.RFC3339),
		"last_reload_successful": a.srv.LastReloadOK(),
		"routes":                 len(snap.Config.Routes),
		"services":               len(snap.Config.Services),
		"consumers":              len(snap.Config.Consumers),
		"uptime_seconds":         int64(time.Since(a.start).Seconds()),
	}
	if !accepting {
		body["last_accept_error"] = acceptErr
	}
	writeJSON(w, code, body)
}

func (a *Admin) getConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.srv.Current().Config.Masked())
}

func (a *Admin) putConfig(w http.ResponseWriter, r *http.Request) {
	cfg, name, ok := parseConfigBody(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !unmaskConfigBody(w, cfg, name, a.srv.Current().Config) {
		return
	}
	a.apply(w, cfg, http.StatusOK, nil)
}

// parseConfigBody reads a whole config from a write's body the way
// PUT /config does (and POST /config/diff, so that the diff is what a PUT
// of the same body would apply): within the size limit, strictly, and
// without ${VAR} expansion (it would let a token holder read the
// gateway's environment back through GET /config). On failure the error
// answer is written.
func parseConfigBody(w http.ResponseWriter, r *http.Request) (*config.Config, string, bool) {
	body, ok := ReadBody(w, r, maxAdminBody)
	if !ok {
		return nil, "", false
	}
	name := bodyName(r)
	// A document with errors is still validated and its plugins built,
	// so the 400 lists every problem; a valid one is compiled by apply.
	cfg, err := config.Check(name, body, nil, proxy.PluginChecker(name))
	if err != nil {
		writeConfigErrors(w, err)
		return nil, "", false
	}
	return cfg, name, true
}

// unmaskConfigBody gives the secrets a body left masked their values in
// running (the body is most likely GET /config edited); a mask with
// nothing to keep is answered 400.
func unmaskConfigBody(w http.ResponseWriter, cfg *config.Config, name string, running *config.Config) bool {
	if err := cfg.Unmask(running, name); err != nil {
		writeConfigErrors(w, err)
		return false
	}
	return true
}

// bodyName names a write's body in errors, and picks its format the way
// a config file's name does: YAML when the Content-Type says so, else JSON.
func bodyName(r *http.Request) string {
	if strings.Contains(r.Header.Get("Content-Type"), "yaml") {
		return "admin.yaml"
	}
	return "admin.json"
}

// ReadBody reads a request body of at most limit bytes. A larger body is
// answered 413 (and false returned) rather than cut at the limit, which
// would turn it into a different document, or left unread, which makes
// the server drop the connection under a client still sending. Admin
// endpoints registered by plugins (Register) use it too.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	tooBig := func() ([]byte, bool) {
		// The server closes the connection after this answer rather
		// than read the rest of the body.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
		return nil, false
	}
	if r.ContentLength > limit {
		return tooBig()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return tooBig()
		}
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return nil, false
	}
	return body, true
}

// apply validates and swaps cfg in; on success it answers status with
// result (or the new version) and the new config's ETag. The caller holds
// a.mu, so the If-Match check here sees the config the change was made
// on.
func (a *Admin) apply(w http.ResponseWriter, cfg *config.Config, status int, result any) {
	if !a.preconditionHolds(w) {
		return
	}
	if err := a.srv.Apply(cfg, "admin API"); err != nil {
		writeConfigErrors(w, err)
		return
	}
	snap := a.srv.Current()
	if result == nil {
		result = map[string]any{"config_version": snap.Version}
	}
	if a.opts.Cluster != nil {
		_ = a.opts.Cluster.Publish(cfg) // a failure is logged; the change stands on this node
	}
	w.Header().Set("ETag", a.etags.of(snap))
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
