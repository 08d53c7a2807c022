package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/proxy/tlsfront"
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
	_, warnings, err := loadConfig(*file, "")
	// Warnings (a certificate out of date) go to stderr and leave the
	// exit status 0: the file is valid, and weir would start with it.
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning: "+w)
	}
	if err != nil {
		printErrors(err)
		return 1
	}
	fmt.Printf("%s: valid\n", *file)
	return 0
}

// loadConfig reads, validates and test-compiles a config file (plugin
// configs included), so `validate` and a reload refuse the same files.
// adminAddr is `weir run --admin`, or "". The certificate pairs of TLS
// listeners are loaded too: warnings name certificates out of date.
func loadConfig(file, adminAddr string) (*config.Config, []string, error) {
	cfg, err := readConfig(file, adminAddr)
	if err != nil {
		return nil, nil, err
	}
	config.ApplyDefaults(cfg)
	if err := config.Validate(cfg, file); err != nil {
		return nil, nil, err
	}
	tlsErrs, warnings := tlsfront.Check(cfg, file)
	if len(tlsErrs) > 0 {
		return nil, warnings, tlsErrs
	}
	if err := proxy.Validate(cfg, file); err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

// readConfig reads a config file and puts `weir run --admin ADDR` (when
// adminAddr is not "") into it as admin.listen. It does so before anything
// validates the config, so the flag is held to the rules of the file: a
// non-loopback admin listener needs a token either way.
func readConfig(file, adminAddr string) (*config.Config, error) {
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	if adminAddr != "" {
		if cfg.Admin == nil {
			cfg.Admin = &config.Admin{}
		}
		cfg.Admin.Listen = adminAddr
	}
	return cfg, nil
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
