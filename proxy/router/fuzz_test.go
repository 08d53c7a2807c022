package router

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// Random routers and requests over a small alphabet, so that patterns
// collide often: Match must agree with the naive reference every time.
func TestMatchAgreesWithReference(t *testing.T) {
	g := newSpecGen(1)
	for round := 0; round < 300; round++ {
		specs := g.specs()
		r, errs := Compile(specs)
		if errs != nil {
			t.Fatalf("round %d: %v", round, errs)
		}
		ref := newRef(specs)
		for q := 0; q < 100; q++ {
			host, method, path, h := g.request()
			var m Match
			got := describe(r.Match([]byte(host), []byte(method), []byte(path), h, &m), &m)
			if want := ref.match(host, method, path, h); got != want {
				t.Fatalf("round %d: %s %s%s with %v\n got  %s\n want %s\nspecs: %+v", round, method, host, path, h, got, want, specs)
			}
		}
	}
}

// specGen makes random routes and requests over a small alphabet, so
// that patterns collide often.
type specGen struct {
	rng *rand.Rand
}

func newSpecGen(seed uint64) *specGen { return &specGen{rng: rand.New(rand.NewPCG(seed, 2))} }

var (
	genSegs       = []string{"a", "b", "users", "7", ""}
	genHosts      = []string{"a.test", "*.test", "*.x.test", "x.test"}
	genMethods    = []string{"GET", "POST", "PUT"}
	genReqHosts   = []string{"", "a.test", "x.test", "y.x.test", "test", "other.test", "z.a.test"}
	genHeaderSets = []Headers{nil, hdr("X-V: 1"), hdr("X-V: 2")}
)

func (g *specGen) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *specGen) path(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("/" + g.pick(genSegs))
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func (g *specGen) pattern() string {
	n := g.rng.IntN(4)
	switch g.rng.IntN(5) {
	case 0: // exact
		return "=" + collapseSlashes(g.path(n))
	case 1: // parameter
		var b strings.Builder
		for i := 0; i <= n; i++ {
			if g.rng.IntN(2) == 0 {
				b.WriteString("/{p" + string(rune('0'+i)) + "}")
			} else {
				b.WriteString("/" + g.pick(genSegs[:2])) // few literals: parameter paths collide often
			}
		}
		return b.String()
	case 2: // regex
		return g.pick([]string{"~^/a", "~^/users/(?P<id>[0-9]+)$", "~b$", "~^/(?P<x>[a-z]+)/(?P<y>.*)", "~^/7/", "~(?i)^/A", "~^/(a|b)/7", "~(users)+/a", "~^/us?ers/a{1,}", "~^/users/", "~^/users/7", "~^/a/b", "~^/a/"})
	}
	p := collapseSlashes(g.path(n)) // prefix, sometimes with a trailing slash
	if g.rng.IntN(3) == 0 && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

func (g *specGen) spec() Spec {
	var s Spec
	for j := g.rng.IntN(3); j > 0 && g.rng.IntN(2) == 0; j-- {
		s.Hosts = append(s.Hosts, g.pick(genHosts))
	}
	for j := g.rng.IntN(3); j > 0; j-- {
		s.Paths = append(s.Paths, g.pattern())
	}
	for j := g.rng.IntN(3); j > 0; j-- {
		s.Methods = append(s.Methods, g.pick(genMethods))
	}
	if g.rng.IntN(4) == 0 {
		s.Headers = map[string]string{"X-V": g.pick([]string{"1", "2"})}
	}
	s.StripPath = g.rng.IntN(2) == 0
	return s
}

func (g *specGen) specs() []Spec {
	var specs []Spec
	for i := g.rng.IntN(12) + 1; i > 0; i-- {
		specs = append(specs, g.spec())
	}
	return specs
}

func (g *specGen) request() (host, method, path string, h Headers) {
	return g.pick(genReqHosts), g.pick(genMethods), g.path(g.rng.IntN(5)), genHeaderSets[g.rng.IntN(len(genHeaderSets))]
}

// within reports whether v is a subslice of s (shares its memory).
func within(v, s []byte) bool {
	if len(v) == 0 {
		return true
	}
	vs, ss := uintptr(unsafe.Pointer(unsafe.SliceData(v))), uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return vs >= ss && vs+uintptr(len(v)) <= ss+uintptr(len(s))
}

// checkMatch asserts what holds for any result, whatever the router.
func checkMatch(t *testing.T, specs []Spec, res Result, m *Match, method, path []byte) {
	t.Helper()
	switch res {
	case Found:
		if m.Route < 0 || m.Route >= len(specs) {
			t.Fatalf("route %d out of range", m.Route)
		}
		if m.StripLen < 0 || m.StripLen > len(path) {
			t.Fatalf("StripLen %d outside the path %q", m.StripLen, path)
		}
		for _, p := range m.Params[:m.NParams] {
			if !within(p.Value, path) {
				t.Fatalf("param %s=%q is not a view into the path", p.Name, p.Value)
			}
		}
		paths := specs[m.Route].Paths
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		p := paths[m.Path]
		if p[0] == '/' && !strings.Contains(p, "{") {
			// A prefix match really is a segment prefix of the path.
			pre := strings.TrimSuffix(p, "/")
			s := string(path)
			if !strings.HasPrefix(s, pre) || len(s) > len(pre) && s[len(pre)] != '/' || m.StripLen != len(pre) {
				t.Fatalf("prefix %q matched %q with StripLen %d", p, path, m.StripLen)
			}
		}
	case MethodNotAllowed:
		if len(m.Allow) == 0 {
			t.Fatal("405 without Allow")
		}
		for _, a := range strings.Split(string(m.Allow), ", ") {
			if a == string(method) {
				t.Fatalf("405 for %s but Allow has it: %q", method, m.Allow)
			}
		}
	case NotFound:
	default:
		t.Fatalf("unknown result %v", res)
	}
}

func FuzzMatch(f *testing.F) {
	specs := append(append([]Spec{}, precedenceSpecs...), methodSpecs...)
	r := mustCompile(f, specs)
	ref := newRef(specs)
	f.Add("api.example.com", "GET", "/users/7", "2")
	f.Add("a.eu.example.com:80", "POST", "/users", "")
	f.Add("[::1]", "DELETE", "/admin", "admin")
	f.Add("", "get", "/files/a/b", "")
	f.Add("re.test", "GET", "/files/a/", "")
	f.Add("h.test", "PUT", "/p/1", "")
	f.Add("rx.test", "GET", "/shared/long/x", "")
	f.Add("rx.test", "GET", "/pl/anywhere", "")
	f.Add("rx.test", "GET", "/CASE/x", "")
	f.Add("", "GET", "//x/../y", "")
	f.Add("X.EXAMPLE.COM.", "GET", "/v/1", "2")
	f.Add("\xff.example.com", "\x00", "/\xff/\xfe", "\xff")
	f.Fuzz(func(t *testing.T, host, method, path, version string) {
		h := hdr("X-Version: "+version, "X-Role: "+version)
		nh := NormalizeHost(nil, []byte(host))
		var m Match
		pb := []byte(path)
		res := r.Match(nh, []byte(method), pb, h, &m)
		checkMatch(t, specs, res, &m, []byte(method), pb)
		if got, want := describe(res, &m), ref.match(string(nh), method, path, h); got != want {
			t.Fatalf("%s %s%s (header %q)\n got  %s\n want %s", method, host, path, version, got, want)
		}
	})
}

func FuzzCompile(f *testing.F) {
	f.Add("api.example.com", "/users/{id}", "GET", "X-Version", "2", "/users/7")
	f.Add("*.example.org", "~^/v(?P<v>[0-9]+)/", "post", "x", "y", "/v1/a")
	f.Add("", "=/a", "", "", "", "/a")
	f.Add("[::1]", "/a/", "PURGE", "H", "v", "/a/b")
	f.Add("*.", "/{a}{b}", "G T", "X Y", "\r", "/x")
	f.Add("a..b", "/{", "*", "", "", "")
	f.Add("x", "~(?P<a>x)(?P<a>y)", "GET", "A", "1", "/xy")
	f.Fuzz(func(t *testing.T, host, pattern, method, hname, hvalue, path string) {
		spec := Spec{Paths: []string{pattern}, Methods: []string{method}, StripPath: len(path)%2 == 0}
		if host != "" {
			spec.Hosts = []string{host}
		}
		if hname != "" || hvalue != "" {
			spec.Headers = map[string]string{hname: hvalue}
		}
		specs := []Spec{spec, {Paths: []string{"/fallback"}}}
		r, errs := Compile(specs)
		if errs != nil {
			if r != nil {
				t.Fatal("router returned along with errors")
			}
			for _, e := range errs {
				if e.Msg == "" || e.Field == "" || e.Route != 0 {
					t.Fatalf("malformed error %+v", e)
				}
			}
			return
		}
		ref := newRef(specs)
		h := hdr("Other: x")
		if hname != "" && !strings.ContainsRune(hname, ':') {
			h = append(h, hdr(hname+": "+strings.TrimSpace(hvalue))...)
		}
		nh := NormalizeHost(nil, []byte(strings.TrimPrefix(host, "*.")))
		for _, p := range []string{path, strings.TrimPrefix(pattern, "="), "/"} {
			for _, mth := range []string{strings.ToUpper(method), "GET", "OTHER"} {
				var m Match
				pb := []byte(p)
				res := r.Match(nh, []byte(mth), pb, h, &m)
				checkMatch(t, specs, res, &m, []byte(mth), pb)
				if got, want := describe(res, &m), ref.match(string(nh), mth, p, h); got != want {
					t.Fatalf("%s %s%s\n got  %s\n want %s", mth, nh, p, got, want)
				}
			}
		}
	})
}
