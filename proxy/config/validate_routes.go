package config

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// Methods are the request methods a route may name: those of RFC 9110 §9
// and PATCH (RFC 5789). Method names are case-sensitive (RFC 9110 §9.1).
var Methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

func (v *validator) checkRoutes() {
	first := make(map[string]int, len(v.c.Routes))
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		if v.c.knownRoute(i) && r.Aggregate == nil && v.knownRouteFits(r, first, i) {
			continue
		}
		p := index("routes", i)
		v.name(key(p, "name"), "route", r.Name, first, "routes", i)
		switch {
		case r.Service != "" && r.Aggregate != nil:
			v.add(p, "a route has either service or aggregate, not both: remove one")
		case r.Service == "" && r.Aggregate == nil:
			v.add(p, "the route sends requests nowhere: set service%s or aggregate", v.serviceHint())
		case r.Service != "":
			if _, ok := v.services[r.Service]; !ok {
				v.add(key(p, "service"), "no service named %q%s", r.Service, v.knownServices(r.Service))
			}
		}
		v.paths(key(p, "paths"), r.Paths)
		v.methods(key(p, "methods"), r.Methods)
		v.hosts(key(p, "hosts"), r.Hosts)
		v.headers(key(p, "headers"), r.Headers)
		if r.Aggregate != nil {
			v.aggregate(key(p, "aggregate"), r.Aggregate, RouteParams(r.Paths))
			if r.WebSocket != nil {
				v.add(key(p, "websocket"), "an aggregate route answers itself and carries no WebSocket: remove websocket")
			}
		}
		if r.WebSocket != nil {
			v.duration(key(key(p, "websocket"), "idle_timeout"), r.WebSocket.IdleTimeout, time.Millisecond, 0)
		}
		v.pluginList(key(p, "plugins"), r.Plugins)
	}
}

// knownRouteFits checks a route that passed every check in an earlier
// document (Config.knownRoute) against the rest of this one: a name no
// route before it has, and a service that exists. It reports false when
// the route needs the full check (which then says what is wrong). An
// aggregate route is always checked in full: its backends name services.
func (v *validator) knownRouteFits(r *Route, first map[string]int, i int) bool {
	if _, dup := first[r.Name]; dup {
		return false
	}
	if _, ok := v.services[r.Service]; !ok {
		return false
	}
	first[r.Name] = i
	return true
}

func (v *validator) serviceHint() string {
	if len(v.serviceNames) == 0 {
		return ""
	}
	return " (one of: " + quoteList(v.serviceNames) + ")"
}

// paths checks the kind marker of each path; the router checks patterns
// in depth ({params}, regular expressions) when it compiles them.
func (v *validator) paths(p string, paths []string) {
	seen := map[string]bool{}
	for i, path := range paths {
		ip := index(p, i)
		switch {
		case path == "":
			v.add(ip, `a path is empty: write "/" to match every path`)
			continue
		case path == "~":
			v.add(ip, `"~" starts a regular expression but none follows: write one such as "~^/v[0-9]+/"`)
			continue
		case path[0] == '/', path[0] == '~', strings.HasPrefix(path, "=/"):
		default:
			v.add(ip, `%q must start with "/" (prefix), "=/" (exact) or "~" (regular expression)`, path)
			continue
		}
		if seen[path] {
			v.add(ip, "%q is listed twice; keep one", path)
		}
		seen[path] = true
	}
}

func (v *validator) methods(p string, methods []string) {
	seen := map[string]bool{}
	for i, m := range methods {
		ip := index(p, i)
		known := false
		for _, x := range Methods {
			known = known || m == x
		}
		switch {
		case known:
		case containsFold(Methods, m):
			v.add(ip, "unknown method %q: methods are case-sensitive, write %q", m, strings.ToUpper(m))
			continue
		default:
			v.add(ip, "unknown method %q: use one of %s", m, quoteList(Methods))
			continue
		}
		if seen[m] {
			v.add(ip, "%q is listed twice; keep one", m)
		}
		seen[m] = true
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (v *validator) hosts(p string, hosts []string) {
	seen := map[string]bool{}
	for i, h := range hosts {
		ip := index(p, i)
		if err := checkRouteHost(h); err != nil {
			v.add(ip, "%v", err)
			continue
		}
		// Host names are case-insensitive (RFC 4343).
		l := strings.ToLower(h)
		if seen[l] {
			v.add(ip, "%q is listed twice; keep one", h)
		}
		seen[l] = true
	}
}

func (v *validator) headers(p string, headers map[string]string) {
	for _, name := range sortedKeys(headers) {
		hp := key(p, name)
		if !httpsyntax.IsToken(name) {
			v.add(hp, "%q is not a header name: use letters, digits and -", name)
			continue
		}
		if !httpsyntax.ValidFieldValue(headers[name]) {
			v.add(hp, "the value holds control characters: use printable characters only")
		}
	}
}

// aggregate checks an aggregate route; params are the route's path
// parameters, the only ones a backend's path may name.
func (v *validator) aggregate(p string, a *Aggregate, params []string) {
	v.duration(key(p, "timeout"), a.Timeout, time.Millisecond, 0)
	if len(a.Backends) == 0 {
		v.add(key(p, "backends"), "an aggregate needs at least one backend: add {service: NAME, path: /PATH, key: KEY}")
	}
	keys := map[string]int{}
	for i, b := range a.Backends {
		bp := index(key(p, "backends"), i)
		switch {
		case b.Service == "":
			v.add(key(bp, "service"), "a backend needs a service%s", v.serviceHint())
		default:
			if _, ok := v.services[b.Service]; !ok {
				v.add(key(bp, "service"), "no service named %q%s", b.Service, v.knownServices(b.Service))
			}
		}
		if b.Path == "" || b.Path[0] != '/' {
			v.add(key(bp, "path"), "%q must start with \"/\", such as \"/users/{id}\"", b.Path)
		}
		v.templateParams(key(bp, "path"), b.Path, params)
		switch {
		case b.Key == "":
			v.add(key(bp, "key"), "a backend needs a key: the name its JSON gets in the merged answer")
		default:
			if j, dup := keys[b.Key]; dup {
				v.add(key(bp, "key"), "backends[%d] already uses key %q: keys must be unique", j, b.Key)
			} else {
				keys[b.Key] = i
			}
		}
	}
}

// templateParams checks that every {name} in an aggregate backend's path
// is a parameter of the route: an unknown one would render empty on every
// request. An unclosed or empty brace is reported when the template
// compiles.
func (v *validator) templateParams(p, t string, params []string) {
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			return
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return
		}
		name := t[i+1 : i+j]
		t = t[i+j+1:]
		switch {
		case name == "" || slices.Contains(params, name):
		case len(params) == 0:
			v.add(p, "{%s} is not a parameter of the route, which has none: add {%s} to its paths", name, name)
		default:
			v.add(p, "{%s} is not a parameter of the route (it has {%s}): use one of those or add {%s} to its paths", name, strings.Join(params, "}, {"), name)
		}
	}
}

// RouteParams lists the parameter names a route's paths can capture:
// {name} segments and regex named groups. Never nil for a route, so a
// plugin can tell "no parameters" from "global instance" (nil).
func RouteParams(paths []string) []string {
	out := []string{}
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "~") {
			if re, err := regexp.Compile(p[1:]); err == nil {
				for _, n := range re.SubexpNames() {
					add(n)
				}
			}
			continue
		}
		for _, seg := range strings.Split(strings.TrimPrefix(p, "="), "/") {
			if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
				add(seg[1 : len(seg)-1])
			}
		}
	}
	return out
}
