package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weirgw/weir/internal/gcfloor"
	"github.com/weirgw/weir/internal/reuseport"
	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/admin"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/proxy/tlsfront"
)

func cmdRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	file := fs.String("c", "", "config file (YAML or JSON)")
	adminAddr := fs.String("admin", "", "admin listener address (overrides admin.listen)")
	logLevel := fs.String("log-level", "info", "debug | info | warn | error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(os.Stderr, "weir run: -c FILE is required")
		return 2
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(*logLevel))
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	raiseFileLimit(log)

	// The reader of the config file, start-up and reloads, which keeps
	// what the unchanged routes gave (config.Reader); reloads are
	// serialised (reloadMu below).
	reader := &config.Reader{}
	cfg, warnings, err := loadRunConfig(reader, *file, *adminAddr)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		printErrors(err)
		if *adminAddr != "" && mentionsAdmin(err) {
			fmt.Fprintf(os.Stderr, "(admin.listen is %q, from --admin)\n", *adminAddr)
		}
		return 1
	}
	srv, err := proxy.New(cfg, *file, log)
	if err != nil {
		printErrors(err)
		return 1
	}
	for _, w := range config.Warnings(cfg, *file) {
		log.Warn("unsafe config setting", "warning", w.Error())
	}

	// One lock for every read-modify-apply cycle of the running config:
	// admin writes, cluster sync and file reloads.
	var applyMu sync.Mutex
	// With redis configured, the cluster's config in Redis is the source
	// of truth for the shared objects: take it before serving.
	cluster := admin.NewCluster(srv, &applyMu, log)
	if cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cluster.Join(ctx)
		cancel()
		cluster.Start()
	}
	// lastFile is the file as last read: a reload compares the new
	// content with it to tell which part the edit changed. It is not a
	// copy: a config is never modified once applied (every admin write
	// edits a Clone), and a copy would double the memory that consumers
	// take, half a kilobyte each.
	lastFile := cfg

	gcfloor.Start(cfg.Server.HeapFloor(), log)

	// Reading the config leaves several times its final size as garbage
	// (a tree and a decoded copy of every consumer); hand it back to the
	// OS now rather than hold it until the background scavenger does, so
	// that the resident size after start-up is what the config needs.
	debug.FreeOSMemory()

	stop := make(chan struct{})
	lns, fronts, err := openListeners(cfg, *file, srv, log, stop)
	if err != nil {
		fmt.Fprintf(os.Stderr, "weir: %v\n", err)
		return 1
	}
	var adm *admin.Admin
	if cfg.Admin != nil && cfg.Admin.Listen != "" {
		adm, err = admin.New(srv, admin.Options{Listen: cfg.Admin.Listen, Token: cfg.Admin.Token,
			Pprof: cfg.Admin.Pprof, ConfigFile: *file, Version: version, Log: log,
			Cluster: cluster, Lock: &applyMu})
		if err != nil {
			fmt.Fprintf(os.Stderr, "weir: admin listener: %v\n", err)
			return 1
		}
		go func() {
			if err := adm.Serve(); err != nil {
				log.Error("admin listener stopped", "error", err)
			}
		}()
	}
	var wg sync.WaitGroup
	for i, ln := range lns {
		wg.Add(1)
		serve := srv.Serve
		if cfg.Listen[i].HTTP2 {
			serve = srv.ServeHTTP2
		}
		go func(ln net.Listener) {
			defer wg.Done()
			if err := serve(ln); err != nil {
				log.Error("listener stopped", "addr", ln.Addr().String(), "error", err)
			}
		}(ln)
		log.Info("weir listening", "addr", ln.Addr().String(), "version", version)
	}

	// Reloads run one at a time. The file watcher and SIGHUP both fire for
	// an edit followed by a signal, and when the signal comes while an
	// earlier reload is still busy the watcher sees the edit first: two
	// reloads of one edit then parsed a 10,000-route file side by side
	// and raced on lastFile. The watcher's reload of content that the
	// last reload read already (the signal's) is skipped; a SIGHUP always
	// reloads, as the operator asked.
	var reloadMu sync.Mutex
	var lastRead [sha256.Size]byte
	// read is the file's content and hash when the caller read it
	// already (SIGHUP, through the watch's rebase), nil to read it here.
	reload := func(why string, read func() ([]byte, [sha256.Size]byte, error)) {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		if read == nil {
			read = func() ([]byte, [sha256.Size]byte, error) {
				data, err := config.ReadFile(*file)
				return data, sha256.Sum256(data), err
			}
		}
		data, sum, err := read()
		var newCfg *config.Config
		if err == nil {
			if why == reloadFileChange && sum == lastRead {
				return
			}
			lastRead = sum
			newCfg, err = checkConfig(reader, *file, data, *adminAddr)
		}
		if err != nil {
			// A file that cannot be read or parsed is a failed reload
			// as much as one that does not validate.
			srv.ReloadFailed()
		} else {
			config.ApplyDefaults(newCfg)
			err = applyFile(srv, cluster, &applyMu, log, lastFile, newCfg, *file)
			if err == nil {
				lastFile = newCfg
				warnRestartOnly(log, cfg, newCfg)
				for _, w := range config.Warnings(newCfg, *file) {
					log.Warn("unsafe config setting", "warning", w.Error())
				}
			}
		}
		if err != nil {
			var list config.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					log.Error("config refused; the running config stays", "trigger", why, "error", e.Error())
				}
			} else {
				log.Error("config refused; the running config stays", "trigger", why, "error", err.Error())
			}
		}
	}

	watch := newFileWatch(*file, log)
	go watch.run(stop, func() { reload(reloadFileChange, nil) })

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s == syscall.SIGUSR1 {
			// logrotate renamed the access log: write on to a new file.
			srv.ReopenAccessLog()
			continue
		}
		if s == syscall.SIGHUP {
			// The file's event then finds this content applied.
			data, sum, err := watch.rebase()
			reload("SIGHUP", func() ([]byte, [sha256.Size]byte, error) { return data, sum, err })
			for _, f := range fronts {
				f.Reload("SIGHUP")
			}
			continue
		}
		break
	}
	close(stop)
	drain := srv.Current().Config.Server.DrainTimeout.D()
	if drain <= 0 {
		drain = 10 * time.Second
	}
	log.Info("shutting down", "drain_timeout", drain.String())
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if adm != nil {
		_ = adm.Shutdown(ctx)
	}
	if cluster != nil {
		cluster.Stop()
	}
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("shutdown", "error", err)
	}
	wg.Wait()
	log.Info("stopped")
	return 0
}

// openListeners binds every proxy listener with the shared listen helper,
// one per cfg.Listen entry and in its order, and wraps those with a tls section in their TLS front (package
// tlsfront), whose certificate files are then watched until stop closes.
func openListeners(cfg *config.Config, file string, srv *proxy.Server, log *slog.Logger,
	stop <-chan struct{}) ([]net.Listener, []*tlsfront.Front, error) {
	var (
		lns     []net.Listener
		fronts  []*tlsfront.Front
		tickets *tlsfront.TicketKeys
	)
	for _, l := range cfg.Listen {
		ln, err := reuseport.Listen(l.Address)
		if err != nil {
			for _, o := range lns {
				o.Close()
			}
			return nil, nil, fmt.Errorf("listen on %s: %w", l.Address, err)
		}
		if l.TLS != nil {
			if tickets == nil {
				tickets = tlsfront.NewTicketKeys(srv.Redis(), log)
			}
			f, err := tlsfront.New(l, tlsfront.Options{ConfigDir: filepath.Dir(file), Log: log,
				HandshakeTimeout: cfg.Server.ReadTimeout.D(), PlainHTTPAnswer: proxy.PlainHTTPAnswer, Tickets: tickets,
				Redis: srv.Redis()})
			if err != nil {
				ln.Close()
				for _, o := range lns {
					o.Close()
				}
				return nil, nil, fmt.Errorf("tls listener %s: %w", l.Address, err)
			}
			ln = f.Listener(ln)
			fronts = append(fronts, f)
			go f.Watch(stop, 500*time.Millisecond)
			go f.Staple(stop)
			go func() { <-stop; f.Stop() }()
		}
		lns = append(lns, ln)
	}
	if tickets != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		tickets.Refresh(ctx)
		cancel()
		go tickets.Run(stop)
	}
	return lns, fronts, nil
}

// sameJSON reports whether a and b encode the same, which for config
// sections is whether they say the same.
func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// mentionsAdmin reports whether err has an error about the admin section,
// which --admin may have caused rather than the file.
func mentionsAdmin(err error) bool {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			if strings.HasPrefix(e.Place, "admin") {
				return true
			}
		}
	}
	return false
}

// reloadFileChange is the trigger of a reload by the file watcher.
const reloadFileChange = "file change"

// applyFile applies an edited config file. Its node-local settings
// always apply. Its shared objects (services, routes, consumers, plugins)
// apply only when the edit changed them: an edit of node-local settings
// alone keeps the objects added or changed through the admin API (or, in a
// cluster, the cluster's). An edit that does change them replaces the
// running ones whole, like PUT /config: a warning names the admin changes
// it drops, and in a cluster the file's objects are published to every
// node.
func applyFile(srv *proxy.Server, cluster *admin.Cluster, mu *sync.Mutex, log *slog.Logger,
	lastFile, newCfg *config.Config, file string) error {
	mu.Lock()
	defer mu.Unlock()
	running := srv.Current().Config
	if admin.SharedEqual(lastFile, newCfg) {
		if running == lastFile {
			// No admin or cluster change since the last read: the
			// running objects are the file's, and newCfg applies as
			// it is, keeping what its Reader knows of its routes.
			// (Applying a copy made the running config differ from
			// lastFile: the next edit then diffed two 10,000-route
			// configs and hashed every route anew.)
			return srv.ApplyChecked(newCfg, file)
		}
		return srv.Apply(admin.WithShared(newCfg, running), file)
	}
	// running is lastFile unless the admin API or the cluster changed
	// something since: only then is there anything to lose (and the diff
	// of two 10,000-route configs is not free).
	if running != lastFile {
		if lost := admin.ConfigDiff(lastFile, running); lost.SharedChanged() {
			log.Warn("the file edit replaces services, routes, consumers and plugins changed through the admin API"+
				" or by another cluster node since the file was read; these admin changes are dropped",
				"admin_changes", lost)
		}
	}
	// newCfg passed config.CheckAdjusted (checkConfig): valid, defaults
	// applied.
	if err := srv.ApplyChecked(newCfg, file); err != nil {
		return err
	}
	if cluster != nil {
		_ = cluster.Publish(newCfg) // a failure is logged; the edit stands on this node
	}
	return nil
}

// warnRestartOnly logs the settings a reload cannot change on a running
// process: listeners are bound once (a zero-downtime restart with
// SO_REUSEPORT picks them up), and so are the Redis client's address and
// the server's header buffer size.
func warnRestartOnly(log *slog.Logger, boot, next *config.Config) {
	if !sameJSON(boot.Listen, next.Listen) {
		log.Warn("listen (or a listener's tls section) changed in the config; it applies after a restart; certificate files reload by themselves",
			"running", boot.Listen.Addresses(), "config", next.Listen.Addresses())
	}
	bootAdmin, nextAdmin := "", ""
	if boot.Admin != nil {
		bootAdmin = boot.Admin.Listen
	}
	if next.Admin != nil {
		nextAdmin = next.Admin.Listen
	}
	if bootAdmin != nextAdmin {
		log.Warn("admin.listen changed in the config; it applies after a restart", "running", bootAdmin, "config", nextAdmin)
	}
	b, n := boot.Server, next.Server
	if b.MaxHeaderBytes != n.MaxHeaderBytes || b.ReadTimeout != n.ReadTimeout || b.WriteTimeout != n.WriteTimeout ||
		b.IdleTimeout != n.IdleTimeout || b.MaxConns != n.MaxConns || b.MaxConnsPerIP != n.MaxConnsPerIP {
		log.Warn("server.max_header_bytes, timeouts or connection caps changed; they apply after a restart")
	}
}
