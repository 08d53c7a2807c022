package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// testEnv is the environment of table tests.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"PORT":    "9001",
		"RETRIES": "3",
		"RATIO":   "0.25",
		"ON":      "true",
		"TOKEN":   "s3cret",
		"EMPTY":   "",
		"LIST":    "[1, 2]",
		"MAP":     "{a: b}",
		"DOLLAR":  "a$$b",
		"SPACED":  " 7 ",
	}[name]
	return v, ok
}

// lines returns the error's lines, or nil for a nil error. Every error
// must be an ErrorList whose entries all have a file and a place.
func lines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, not ErrorList: %v", err, err)
	}
	if len(list) == 0 {
		t.Fatal("empty ErrorList returned as an error")
	}
	for _, e := range list {
		if e.Place == "" || e.Msg == "" {
			t.Fatalf("error without place or message: %#v", e)
		}
	}
	return list.Lines()
}

// check compares error lines with want, which omit the "t.yaml: " prefix.
func check(t *testing.T, err error, want []string) {
	t.Helper()
	got := lines(t, err)
	for i := range got {
		got[i] = strings.TrimPrefix(got[i], "t.yaml: ")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("errors differ\ngot:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// parseValidate is what `weir validate` does, on an inline document.
func parseValidate(doc string) (*Config, error) {
	c, err := ParseEnv("t.yaml", []byte(doc), testEnv)
	if err != nil {
		return nil, err
	}
	ApplyDefaults(c)
	return c, Validate(c, "t.yaml")
}

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := ParseEnv("t.yaml", []byte(doc), testEnv)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}
