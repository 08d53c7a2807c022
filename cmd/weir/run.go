package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/admin"
	"github.com/weirgw/weir/proxy/config"
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

	cfg, err := loadConfig(*file)
	if err != nil {
		printErrors(err)
		return 1
	}
	if *adminAddr != "" {
		if cfg.Admin == nil {
			cfg.Admin = &config.Admin{}
		}
		cfg.Admin.Listen = *adminAddr
	}
	srv, err := proxy.New(cfg, *file, log)
	if err != nil {
		printErrors(err)
		return 1
	}

	var lns []net.Listener
	for _, addr := range cfg.Listen {
		ln, err := listen(addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "weir: listen on %s: %v\n", addr, err)
			return 1
		}
		lns = append(lns, ln)
	}
	var adm *admin.Admin
	if cfg.Admin != nil && cfg.Admin.Listen != "" {
		adm, err = admin.New(srv, admin.Options{Listen: cfg.Admin.Listen, Token: cfg.Admin.Token,
			Pprof: cfg.Admin.Pprof, ConfigFile: *file, Version: version, Log: log})
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
	for _, ln := range lns {
		wg.Add(1)
		go func(ln net.Listener) {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil {
				log.Error("listener stopped", "addr", ln.Addr().String(), "error", err)
			}
		}(ln)
		log.Info("weir listening", "addr", ln.Addr().String(), "version", version)
	}

	reload := func(why string) {
		// Every stage's errors are logged, as `weir validate` prints them.
		newCfg, err := config.LoadCheck(*file, proxy.PluginChecker(*file))
		if err == nil {
			if *adminAddr != "" && newCfg.Admin != nil {
				newCfg.Admin.Listen = *adminAddr
			}
			err = srv.Apply(newCfg, *file)
			if err == nil {
				warnRestartOnly(log, cfg, newCfg)
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

	stop := make(chan struct{})
	go watchFile(*file, stop, func() { reload("file change") })

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s == syscall.SIGHUP {
			reload("SIGHUP")
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
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("shutdown", "error", err)
	}
	wg.Wait()
	log.Info("stopped")
	return 0
}

// watchFile polls the config file and calls onChange when its content
// changes. Polling (rather than inotify) follows editors that replace the
// file by renaming, and config maps whose symlinks flip.
func watchFile(file string, stop <-chan struct{}, onChange func()) {
	sum := func() []byte {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil
		}
		h := sha256.Sum256(b)
		return h[:]
	}
	last := sum()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			cur := sum()
			if cur != nil && !bytes.Equal(cur, last) {
				last = cur
				onChange()
			}
		}
	}
}

// warnRestartOnly logs the settings a reload cannot change on a running
// process: listeners are bound once (a zero-downtime restart with
// SO_REUSEPORT picks them up), and so are the Redis client's address and
// the server's header buffer size.
func warnRestartOnly(log *slog.Logger, boot, next *config.Config) {
	if strings.Join(boot.Listen, ",") != strings.Join(next.Listen, ",") {
		log.Warn("listen changed in the config; it applies after a restart", "running", boot.Listen, "config", next.Listen)
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
