package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

func cmdValidate(args []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	file := fs.String("c", "", "config file (YAML or JSON)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(os.Stderr, "weir validate: -c FILE is required")
		return 2
	}
	if _, err := loadConfig(*file); err != nil {
		printErrors(err)
		return 1
	}
	fmt.Printf("%s: valid\n", *file)
	return 0
}

// loadConfig reads, validates and test-compiles a config file (plugin
// configs included), so `validate` and a reload refuse the same files.
// Every stage runs even when an earlier one found errors (config.Check),
// so one run lists every problem of the file.
func loadConfig(file string) (*config.Config, error) {
	return config.LoadCheck(file, proxy.Checker(file))
}

// printErrors prints every error of a list, one a line.
func printErrors(err error) {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(os.Stderr, e.Error())
		}
		return
	}
	fmt.Fprintln(os.Stderr, err.Error())
}
