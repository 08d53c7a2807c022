package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weirgw/weir/internal/echo"
)

func cmdEcho(args []string) int {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9001", "address to listen on")
	name := fs.String("name", "", "name reported in replies (default: the listen address)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *name == "" {
		*name = *listen
	}
	ln, err := echo.Listen(*listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "weir echo: listen on %s: %v\n", *listen, err)
		return 1
	}
	srv := echo.Server(*name)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		_ = srv.Shutdown()
	}()
	fmt.Fprintf(os.Stderr, "weir echo listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "weir echo: %v\n", err)
		return 1
	}
	return 0
}
