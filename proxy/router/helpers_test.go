package router

import (
	"fmt"
	"strings"
	"testing"
)

// testHeaders is a Headers for tests: case-insensitive names, no
// allocation in Peek.
type testHeaders []struct {
	name  string
	value []byte
}

func (h testHeaders) Peek(key string) []byte {
	for i := range h {
		if strings.EqualFold(h[i].name, key) {
			return h[i].value
		}
	}
	return nil
}

// hdr builds testHeaders from "Name: value" strings.
func hdr(kv ...string) testHeaders {
	var h testHeaders
	for _, s := range kv {
		name, value, ok := strings.Cut(s, ":")
		if !ok {
			panic("hdr wants \"Name: value\", got " + s)
		}
		h = append(h, struct {
			name  string
			value []byte
		}{name, []byte(strings.TrimSpace(value))})
	}
	return h
}

func mustCompile(t testing.TB, specs []Spec) *Router {
	t.Helper()
	r, errs := Compile(specs)
	if len(errs) > 0 {
		t.Fatalf("Compile: %v", errs)
	}
	return r
}

// describe renders a match as one comparable string:
// "Found route=3 path=0 strip=8 params=id=7,x=y" or
// "MethodNotAllowed allow=GET, HEAD" or "NotFound".
func describe(res Result, m *Match) string {
	switch res {
	case Found:
		var ps []string
		for _, p := range m.Params[:m.NParams] {
			ps = append(ps, p.Name+"="+string(p.Value))
		}
		return fmt.Sprintf("Found route=%d path=%d strip=%d params=%s", m.Route, m.Path, m.StripLen, strings.Join(ps, ","))
	case MethodNotAllowed:
		return "MethodNotAllowed allow=" + string(m.Allow)
	}
	return res.String()
}

func doMatch(r *Router, host, method, path string, h Headers) string {
	var m Match
	nh := NormalizeHost(nil, []byte(host))
	return describe(r.Match(nh, []byte(method), []byte(path), h, &m), &m)
}
