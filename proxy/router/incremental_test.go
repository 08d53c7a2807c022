package router

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// CompileFrom must match exactly as Compile does: random route sets,
// edited at random generation after generation (a route changed, added,
// removed, moved, its strip_path or headers flipped), each compiled both
// from the previous Router and from scratch, then asked the same random
// requests.
func TestCompileFromMatchesCompile(t *testing.T) {
	g := newSpecGen(7)
	for round := 0; round < 100; round++ {
		specs := g.specs()
		prev := mustCompile(t, specs)
		for gen := 0; gen < 8; gen++ {
			specs = g.edit(specs)
			inc, errs := CompileFrom(specs, prev)
			if errs != nil {
				t.Fatalf("round %d gen %d: %v", round, gen, errs)
			}
			full := mustCompile(t, specs)
			for q := 0; q < 100; q++ {
				host, method, path, h := g.request()
				if a, b := doMatch(inc, host, method, path, h), doMatch(full, host, method, path, h); a != b {
					t.Fatalf("round %d gen %d: %s %s%s with %v\n incremental %s\n full        %s\nspecs: %+v", round, gen, method, host, path, h, a, b, specs)
				}
			}
			prev = inc
		}
	}
}

// edit returns a copy of specs with one random change.
func (g *specGen) edit(specs []Spec) []Spec {
	out := slices.Clone(specs)
	i := g.rng.IntN(len(out))
	switch g.rng.IntN(6) {
	case 0:
		out[i] = g.spec()
	case 1:
		out = slices.Insert(out, i, g.spec())
	case 2:
		if len(out) > 1 {
			out = slices.Delete(out, i, i+1)
		}
	case 3:
		j := g.rng.IntN(len(out))
		out[i], out[j] = out[j], out[i]
	case 4:
		out[i].StripPath = !out[i].StripPath
	case 5:
		if out[i].Headers == nil {
			out[i].Headers = map[string]string{"X-V": "1"}
		} else {
			out[i].Headers = nil
		}
	}
	return out
}

// A changed route that is invalid, or one method too many, gets exactly
// Compile's errors, numbered in the whole list.
func TestCompileFromErrors(t *testing.T) {
	specs := []Spec{{Paths: []string{"/a"}}, {Paths: []string{"/b"}, Methods: []string{"GET"}}, {Paths: []string{"~^/c"}}}
	prev := mustCompile(t, specs)
	bad := slices.Clone(specs)
	bad[1] = Spec{Paths: []string{"/b/{"}, Headers: map[string]string{"": "x"}}
	_, want := Compile(bad)
	if r, got := CompileFrom(bad, prev); r != nil || len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("CompileFrom: %v %v, Compile: %v", r, got, want)
	}
	many := slices.Clone(specs)
	for i := 0; i < 65; i++ {
		many = append(many, Spec{Paths: []string{fmt.Sprintf("/m%d", i)}, Methods: []string{fmt.Sprintf("M%d", i)}})
	}
	_, want = Compile(many)
	if r, got := CompileFrom(many, prev); r != nil || len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("CompileFrom: %v %v, Compile: %v", r, got, want)
	}
}

// Reusing a parsed route does not change the Router it came from: header
// ids are per Router (Match caches header values by id, so two names
// given one id would read each other's values).
func TestCompileFromLeavesPrevAlone(t *testing.T) {
	a := []Spec{{Paths: []string{"/"}, Headers: map[string]string{"X-B": "1"}}, {Paths: []string{"/"}, Headers: map[string]string{"X-A": "1"}}}
	prev := mustCompile(t, a)
	req := hdr("X-B: 2", "X-A: 1")
	before := doMatch(prev, "", "GET", "/", req)
	if _, errs := CompileFrom([]Spec{a[1]}, prev); errs != nil { // X-A is this Router's header 0
		t.Fatal(errs)
	}
	if after := doMatch(prev, "", "GET", "/", req); after != before {
		t.Fatalf("prev changed: %s, was %s", after, before)
	}
}

// Specs that all equal prev's, at the same index, give prev itself (no
// index is built again); any change of one, StripPath included, gives a
// new Router that matches as Compile's.
func TestCompileFromSameSpecsIsPrev(t *testing.T) {
	specs := []Spec{{Paths: []string{"/a/{id}"}}, {Paths: []string{"~^/b(?P<x>[0-9]+)"}, Methods: []string{"GET"}}}
	prev := mustCompile(t, specs)
	same := []Spec{{Paths: []string{"/a/{id}"}}, {Paths: []string{"~^/b(?P<x>[0-9]+)"}, Methods: []string{"GET"}}}
	if r, errs := CompileFrom(same, prev); errs != nil || r != prev {
		t.Fatalf("same specs: %p %v, want prev %p", r, errs, prev)
	}
	for _, edit := range []func(s []Spec){
		func(s []Spec) { s[1].StripPath = true },
		func(s []Spec) { s[0].Paths = []string{"/a/{id}/x"} },
		func(s []Spec) { s[1].Headers = map[string]string{"X-V": "1"} },
	} {
		changed := slices.Clone(same)
		edit(changed)
		r, errs := CompileFrom(changed, prev)
		if errs != nil || r == prev {
			t.Fatalf("%+v: %v, reused prev %v", changed, errs, r == prev)
		}
		full := mustCompile(t, changed)
		for _, p := range []string{"/a/1", "/a/1/x", "/b12", "/c"} {
			if a, b := doMatch(r, "", "GET", p, hdr("X-V: 1")), doMatch(full, "", "GET", p, hdr("X-V: 1")); a != b {
				t.Fatalf("%+v %s: incremental %s, full %s", changed, p, a, b)
			}
		}
	}
	if r, _ := CompileFrom(same[:1], prev); r == prev {
		t.Fatal("fewer specs gave prev")
	}
}
