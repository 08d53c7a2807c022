package proxy

import (
	"fmt"
	"log/slog"

	"github.com/weirgw/weir/pool"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
)

// Checker returns the config.CheckFunc of the proxy for a config read
// from file: config.Check runs it after Validate so that `weir validate`
// and PUT /config report plugin errors in the same run as the others.
// On a valid config it compiles everything, as a reload would (see
// Validate); on an invalid one it builds only the plugins, each from its
// own config, since the rest of the compile relies on a validated config.
func Checker(file string) config.CheckFunc {
	return func(cfg *config.Config, valid bool) error {
		if valid {
			return Validate(cfg, file)
		}
		return CheckPlugins(cfg, file)
	}
}

// PluginChecker is Checker for a config about to be applied (Server.Apply
// compiles a valid config in full anyway): it builds the plugins of an
// invalid config only, so that their errors join the validation errors.
func PluginChecker(file string) config.CheckFunc {
	return func(cfg *config.Config, valid bool) error {
		if valid {
			return nil
		}
		return CheckPlugins(cfg, file)
	}
}

// CheckPlugins builds every enabled plugin instance of cfg in validating
// mode and reports their errors. Unknown plugin names are skipped:
// config.Validate reports them with a suggestion.
func CheckPlugins(cfg *config.Config, file string) error {
	s := &Server{log: slog.Default(), pools: pool.NewRegistry(), upstreams: newUpstreams(), redisConfigured: cfg.Redis != nil}
	d := s.deps(true, file)
	list := make([]*sdk.Consumer, 0, len(cfg.Consumers))
	for _, c := range cfg.Consumers {
		list = append(list, &sdk.Consumer{Name: c.Name, Groups: c.Groups, Credentials: c.Credentials})
	}
	consumers := sdk.NewConsumers(list)
	var errs config.ErrorList
	var built []sdk.Filter
	try := func(p config.Plugin, place string, b *sdk.Build) {
		if p.Enabled != nil && !*p.Enabled {
			return
		}
		if _, ok := sdk.Lookup(p.Name); !ok {
			return
		}
		b.Consumers = consumers
		f, err := buildFilter(p, b)
		if err != nil {
			errs = appendPluginErrors(errs, file, place, err)
			return
		}
		built = append(built, f)
	}
	for i, p := range cfg.Plugins {
		try(p, pluginPlace(-1, i, p.Name), d.build("", ""))
	}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		for j, p := range rc.Plugins {
			b := d.build(rc.Name, rc.Service)
			b.Params = config.RouteParams(rc.Paths)
			try(p, pluginPlace(i, j, p.Name), b)
		}
	}
	snap := &Snapshot{byKey: map[unitKey]*unit{}}
	snap.newUnit(unitKey{}).filters = built
	snap.closeResources(d)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// pluginPlace is where a plugin instance's errors are reported: the i-th
// global plugin (route < 0) or the i-th plugin of a route, with its name,
// as in "routes[0].plugins[1] (rate_limit)".
func pluginPlace(route, i int, name string) string {
	if route < 0 {
		return fmt.Sprintf("plugins[%d] (%s)", i, name)
	}
	return fmt.Sprintf("routes[%d].plugins[%d] (%s)", route, i, name)
}

// enabledPlugin is the place in plugins of the k-th enabled one: a
// route's unit holds a filter for each enabled plugin, in order.
func enabledPlugin(plugins []config.Plugin, k int) int {
	for j, p := range plugins {
		if p.Enabled == nil || *p.Enabled {
			if k == 0 {
				return j
			}
			k--
		}
	}
	return -1
}

// appendPluginErrors adds a plugin's build error to errs at place, one
// entry per error when the plugin joined several (errors.Join), so that
// each line of `weir validate` and each item of the admin API's answer
// names its plugin.
func appendPluginErrors(errs config.ErrorList, file, place string, err error) config.ErrorList {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = appendPluginErrors(errs, file, place, e)
		}
		return errs
	}
	if err == nil {
		return errs
	}
	return append(errs, &config.Error{File: file, Place: place, Msg: err.Error()})
}
