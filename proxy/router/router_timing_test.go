package router

import (
	"fmt"
	"testing"
)

// benchKinds builds n routes of one kind and a request that hits the last
// one (the worst case for anything scanned in config order).
var benchKinds = []struct {
	name    string
	spec    func(i int) Spec
	request func(n int) (host, method, path string)
	want    Result
}{
	{"exact",
		func(i int) Spec { return Spec{Paths: []string{fmt.Sprintf("=/api/v1/resource%d/items", i)}} },
		func(n int) (string, string, string) { return "", "GET", fmt.Sprintf("/api/v1/resource%d/items", n-1) },
		Found},
	{"prefix",
		func(i int) Spec { return Spec{Paths: []string{fmt.Sprintf("/api/v1/resource%d", i)}} },
		func(n int) (string, string, string) {
			return "", "GET", fmt.Sprintf("/api/v1/resource%d/items/42/details", n-1)
		},
		Found},
	{"param",
		func(i int) Spec { return Spec{Paths: []string{fmt.Sprintf("/api/v1/resource%d/{id}/items/{item}", i)}} },
		func(n int) (string, string, string) {
			return "", "GET", fmt.Sprintf("/api/v1/resource%d/42/items/7", n-1)
		},
		Found},
	{"regex",
		func(i int) Spec { return Spec{Paths: []string{fmt.Sprintf("~^/api/v[0-9]+/resource%d/[0-9]+$", i)}} },
		func(n int) (string, string, string) { return "", "GET", fmt.Sprintf("/api/v1/resource%d/42", n-1) },
		Found},
	{"regex_unanchored",
		func(i int) Spec { return Spec{Paths: []string{fmt.Sprintf("~/resource%d/[0-9]+$", i)}} },
		func(n int) (string, string, string) { return "", "GET", fmt.Sprintf("/api/v1/resource%d/42", n-1) },
		Found},
	{"wildcard_host",
		func(i int) Spec {
			return Spec{Hosts: []string{fmt.Sprintf("*.tenant%d.example.com", i)}, Paths: []string{"/api"}}
		},
		func(n int) (string, string, string) {
			return fmt.Sprintf("a.b.tenant%d.example.com", n-1), "GET", "/api/users"
		},
		Found},
	{"exact_host",
		func(i int) Spec {
			return Spec{Hosts: []string{fmt.Sprintf("api%d.example.com", i)}, Paths: []string{"/api"}}
		},
		func(n int) (string, string, string) {
			return fmt.Sprintf("api%d.example.com", n-1), "GET", "/api/users"
		},
		Found},
	{"header",
		func(i int) Spec {
			return Spec{Paths: []string{"/api"}, Headers: map[string]string{"X-Tenant": fmt.Sprintf("t%d", i)}}
		},
		func(n int) (string, string, string) { return "", "GET", "/api/users" },
		Found},
	{"405",
		func(i int) Spec {
			return Spec{Paths: []string{fmt.Sprintf("/api/v1/resource%d", i)}, Methods: []string{"GET", "HEAD"}}
		},
		func(n int) (string, string, string) { return "", "POST", fmt.Sprintf("/api/v1/resource%d/items", n-1) },
		MethodNotAllowed},
	{"not_found",
		func(i int) Spec { return Spec{Paths: []string{fmt.Sprintf("/api/v1/resource%d", i)}} },
		func(n int) (string, string, string) { return "", "GET", "/static/app.js" },
		NotFound},
}

func BenchmarkMatch(b *testing.B) {
	for _, k := range benchKinds {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", k.name, n), func(b *testing.B) {
				specs := make([]Spec, n)
				for i := range specs {
					specs[i] = k.spec(i)
				}
				r := mustCompile(b, specs)
				host, method, path := k.request(n)
				hb, mb, pb := []byte(host), []byte(method), []byte(path)
				var h Headers = hdr("X-Tenant: " + fmt.Sprintf("t%d", n-1))
				var m Match
				if res := r.Match(hb, mb, pb, h, &m); res != k.want {
					b.Fatalf("Match = %v, want %v", res, k.want)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r.Match(hb, mb, pb, h, &m)
				}
			})
		}
	}
}

// A realistic mix: 1000 routes of every kind, requests of every kind.
func BenchmarkMatchMixed1000(b *testing.B) {
	var specs []Spec
	for i := 0; len(specs) < 1000; i++ {
		for _, k := range benchKinds {
			if k.name != "header" && k.name != "regex_unanchored" {
				specs = append(specs, k.spec(i))
			}
		}
	}
	r := mustCompile(b, specs)
	paths := [][]byte{
		[]byte("/api/v1/resource50/items"),
		[]byte("/api/v1/resource50/7/items/9"),
		[]byte("/api/v1/resource50/a/b/c"),
		[]byte("/nothing/here"),
	}
	host := []byte("x.tenant50.example.com")
	var m Match
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Match(host, []byte("GET"), paths[i%len(paths)], nil, &m)
	}
}

func BenchmarkNormalizeHost(b *testing.B) {
	in := []byte("API.Example.com:8443")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = NormalizeHost(buf[:0], in)
	}
}

func BenchmarkCompile1000(b *testing.B) {
	var specs []Spec
	for i := 0; i < 200; i++ {
		for _, k := range benchKinds[:4] {
			specs = append(specs, k.spec(i))
		}
		specs = append(specs, benchKinds[5].spec(i))
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, errs := Compile(specs); errs != nil {
			b.Fatal(errs)
		}
	}
}

// Regex routes whose literal prefixes differ (one service each, the usual
// shape of a regex table): the request hits the last one. With the
// literal-prefix index the cost should not grow with the number of routes.
func BenchmarkMatchRegex(b *testing.B) {
	for _, n := range []int{1, 50, 500} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			specs := make([]Spec, n)
			for i := range specs {
				specs[i] = Spec{Paths: []string{fmt.Sprintf("~^/svc%d/v[0-9]+/items/[0-9]+$", i)}}
			}
			r := mustCompile(b, specs)
			path := []byte(fmt.Sprintf("/svc%d/v2/items/42", n-1))
			method := []byte("GET")
			var m Match
			if res := r.Match(nil, method, path, nil, &m); res != Found || m.Route != n-1 {
				b.Fatalf("Match = %v route %d, want Found route %d", res, m.Route, n-1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Match(nil, method, path, nil, &m)
			}
		})
	}
}
