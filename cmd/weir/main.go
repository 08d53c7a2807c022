// Command weir is the Weir API gateway.
//
//	weir run -c FILE [--admin ADDR]   start the gateway
//	weir validate -c FILE             check a config; exit 1 and print every error
//	weir version                      version, commit, Go version
//	weir echo --listen ADDR           the demo upstream (echoes requests as JSON)
//	weir key-auth put|delete -c FILE  write or delete a key_auth credential in Redis
package main

import (
	"fmt"
	"os"
	"runtime"

	_ "github.com/weirgw/weir/plugins/all"
)

// Set by the linker: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:])
	case "validate":
		return cmdValidate(args[1:])
	case "version", "--version", "-v":
		fmt.Printf("weir %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "echo":
		return cmdEcho(args[1:])
	case "key-auth":
		return cmdKeyAuth(args[1:], os.Stdin)
	case "help", "-h", "--help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "weir: unknown command %q\n\n", args[0])
	usage()
	return 2
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  weir run -c FILE [--admin ADDR]   start the gateway; FILE is YAML or JSON
  weir validate -c FILE             exit 0 when valid; exit 1 and print every error, one a line
  weir version                      version, commit, Go version
  weir echo --listen ADDR [--name N] run the demo upstream
  weir key-auth put -c FILE --consumer NAME [--groups G1,G2] [--id ID] < KEYFILE
  weir key-auth delete -c FILE < KEYFILE
                                    write or delete a key_auth credential in FILE's Redis
`)
}
