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
	cfg, warnings, err := loadConfig(*file, "")
	// Warnings (a certificate out of date) go to stderr and leave the
	// exit status 0: the file is valid, and weir would start with it.
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning: "+w)
	}
	if err != nil {
		printErrors(err)
		return 1
	}
	// Warnings name what is valid but unsafe; the file still passes.
	for _, w := range config.Warnings(cfg, *file) {
		fmt.Fprintln(os.Stderr, "warning: "+w.Error())
	}
	fmt.Printf("%s: valid\n", *file)
	return 0
}

// loadConfig reads, validates and test-compiles a config file (plugin
// configs included), so `validate` and a reload refuse the same files.
// Every stage runs even when an earlier one found errors (config.Check),
// so one run lists every problem of the file. adminAddr is
// `weir run --admin`, or "". The certificate pairs of TLS listeners are
// loaded too: their errors join the others, and warnings name
// certificates out of date.
func loadConfig(file, adminAddr string) (*config.Config, []string, error) {
	var warnings []string
	cfg, err := config.LoadCheckAdjusted(file, adminFlag(adminAddr), withTLS(file, proxy.Checker(file), &warnings))
	return cfg, warnings, err
}

// loadRunConfig is loadConfig for `weir run`: a valid config is not
// test-compiled, since proxy.New compiles it next and reports the same
// errors; a config with errors still gets its plugins built, so that one
// run lists every problem. At a million consumers the second compile was
// a fifth of the start-up.
// It reads through rd, which the reloads then use (config.Reader).
func loadRunConfig(rd *config.Reader, file, adminAddr string) (*config.Config, []string, error) {
	var warnings []string
	cfg, err := rd.LoadCheckAdjusted(file, adminFlag(adminAddr), withTLS(file, proxy.PluginChecker(file), &warnings))
	return cfg, warnings, err
}

// withTLS runs tlsfront.Check beside check, so that a broken certificate
// pair is reported in the same pass as every other error.
func withTLS(file string, check config.CheckFunc, warnings *[]string) config.CheckFunc {
	return func(cfg *config.Config, valid bool) error {
		tlsErrs, w := tlsfront.Check(cfg, file)
		*warnings = append(*warnings, w...)
		err := check(cfg, valid)
		if len(tlsErrs) == 0 {
			return err
		}
		if err == nil {
			return tlsErrs
		}
		var rest config.ErrorList
		if !errors.As(err, &rest) {
			rest = config.ErrorList{{File: file, Place: config.TopLevel, Msg: err.Error()}}
		}
		return append(tlsErrs, rest...)
	}
}

// checkConfig reads the content of a config file for a reload: every
// stage's errors at once, as `weir validate` prints them; plugins are
// only test-built when the rest is invalid (a valid config is compiled by
// Apply anyway).
// rd reads again only the YAML routes whose text changed since the
// last valid version (config.Reader).
func checkConfig(rd *config.Reader, file string, data []byte, adminAddr string) (*config.Config, error) {
	return rd.CheckAdjusted(file, data, os.LookupEnv, adminFlag(adminAddr), proxy.PluginChecker(file))
}

// adminFlag puts `weir run --admin ADDR` (when addr is not "") into a
// config as admin.listen. It does so before anything validates the
// config, so the flag is held to the rules of the file: a non-loopback
// admin listener needs a token either way.
func adminFlag(addr string) func(*config.Config) {
	if addr == "" {
		return nil
	}
	return func(cfg *config.Config) {
		if cfg.Admin == nil {
			cfg.Admin = &config.Admin{}
		}
		cfg.Admin.Listen = addr
	}
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
