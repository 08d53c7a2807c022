package router

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// refRouter is a deliberately naive router: it lists every (host, path)
// candidate of every route, sorts them by the documented precedence and
// scans them with string functions. Match must agree with it on every
// input; it shares no matching code with the tries.
type refRouter struct {
	specs []Spec
	cands []refCand
}

type refCand struct {
	route, path int
	host        string // canonical; "" = any host
	wild        bool
	pattern     string
	re          *regexp.Regexp
}

func newRef(specs []Spec) *refRouter {
	ref := &refRouter{specs: specs}
	for ri, s := range specs {
		hosts := []refCand{{}}
		if len(s.Hosts) > 0 {
			hosts = nil
			for _, h := range s.Hosts {
				name, wild, msg := parseHost(h)
				if msg != "" {
					panic(msg)
				}
				hosts = append(hosts, refCand{host: name, wild: wild})
			}
		}
		paths := s.Paths
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		for pi, p := range paths {
			for _, h := range hosts {
				c := refCand{route: ri, path: pi, host: h.host, wild: h.wild, pattern: p}
				if p[0] == '~' {
					c.re = regexp.MustCompile(p[1:])
				}
				ref.cands = append(ref.cands, c)
			}
		}
	}
	return ref
}

// order is the sort key of a candidate that matched the host: host class,
// wildcard length, path kind, kind-specific key, then config order.
func (c *refCand) order() [6]int {
	class, hostKey := 2, 0
	if c.host != "" && !c.wild {
		class = 0
	} else if c.wild {
		class, hostKey = 1, -len(c.host)
	}
	kind, key := 2, -len(c.pattern) // prefix: longest first
	switch {
	case c.pattern[0] == '=':
		kind, key = 0, 0
	case c.pattern[0] == '~':
		kind, key = 3, 0
	case strings.Contains(c.pattern, "{"):
		kind, key = 1, 0
		for _, s := range strings.Split(c.pattern[1:], "/") {
			if !strings.HasPrefix(s, "{") {
				key--
			}
		}
	}
	return [6]int{class, hostKey, kind, key, c.route, c.path}
}

func (c *refCand) hostMatches(host string) bool {
	switch {
	case c.host == "":
		return true
	case c.wild:
		return strings.HasSuffix(host, "."+c.host)
	}
	return host == c.host
}

// pathMatch returns whether the pattern matches, the strip length and
// the params as "name=value" strings.
func (c *refCand) pathMatch(path string, strip bool) (bool, int, []string) {
	p := c.pattern
	switch {
	case p[0] == '=':
		return path == p[1:], len(path), nil
	case p[0] == '~':
		loc := c.re.FindStringSubmatchIndex(path)
		if loc == nil {
			return false, 0, nil
		}
		n := 0
		if strip && loc[0] == 0 {
			n = loc[1]
			if n > 1 && path[n-1] == '/' {
				n--
			}
		}
		var params []string
		for i, name := range c.re.SubexpNames() {
			if i > 0 && name != "" && loc[2*i] >= 0 {
				params = append(params, name+"="+path[loc[2*i]:loc[2*i+1]])
			}
		}
		return true, n, params
	case strings.Contains(p, "{"):
		ps, xs := strings.Split(p[1:], "/"), strings.Split(path[1:], "/")
		if len(ps) != len(xs) {
			return false, 0, nil
		}
		var params []string
		for i := range ps {
			if strings.HasPrefix(ps[i], "{") {
				if xs[i] == "" {
					return false, 0, nil
				}
				params = append(params, ps[i][1:len(ps[i])-1]+"="+xs[i])
			} else if ps[i] != xs[i] {
				return false, 0, nil
			}
		}
		return true, len(path), params
	case p == "/":
		return true, 0, nil
	case strings.HasSuffix(p, "/"):
		return strings.HasPrefix(path, p), len(p) - 1, nil
	}
	return path == p || strings.HasPrefix(path, p+"/"), len(p), nil
}

// match returns what describe() would print for Router.Match.
func (ref *refRouter) match(host, method, path string, h Headers) string {
	if path == "" || path[0] != '/' {
		return "NotFound"
	}
	var cs []*refCand
	for i := range ref.cands {
		if ref.cands[i].hostMatches(host) {
			cs = append(cs, &ref.cands[i])
		}
	}
	sort.SliceStable(cs, func(a, b int) bool {
		oa, ob := cs[a].order(), cs[b].order()
		for i := range oa {
			if oa[i] != ob[i] {
				return oa[i] < ob[i]
			}
		}
		return false
	})
	allowed := map[string]bool{}
	for _, c := range cs {
		s := ref.specs[c.route]
		ok, strip, params := c.pathMatch(path, s.StripPath)
		if !ok || !refHeaders(s.Headers, h) {
			continue
		}
		methodOK := len(s.Methods) == 0
		for _, m := range s.Methods {
			if strings.ToUpper(m) == method {
				methodOK = true
			}
		}
		if methodOK {
			return fmt.Sprintf("Found route=%d path=%d strip=%d params=%s", c.route, c.path, strip, strings.Join(params, ","))
		}
		for _, m := range s.Methods {
			allowed[strings.ToUpper(m)] = true
		}
	}
	if len(allowed) == 0 {
		return "NotFound"
	}
	var names []string
	for m := range allowed {
		names = append(names, m)
	}
	sort.Strings(names)
	return "MethodNotAllowed allow=" + strings.Join(names, ", ")
}

func refHeaders(want map[string]string, h Headers) bool {
	for name, value := range want {
		if h == nil || string(h.Peek(name)) != value {
			return false
		}
	}
	return true
}
