package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyAuthCommandRefusesBadUse(t *testing.T) {
	dir := t.TempDir()
	noRedis := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(noRedis, []byte("listen: \":0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		in   string
		want int
	}{
		{nil, "k", 2},
		{[]string{"get"}, "k", 2},
		{[]string{"put", "--consumer", "bob"}, "k", 2},
		{[]string{"put", "-c", noRedis}, "k", 2},
		{[]string{"delete", "-c", noRedis, "--consumer", "bob"}, "k", 2},
		{[]string{"put", "-c", noRedis, "--consumer", "bob"}, "k", 2},
		{[]string{"put", "-c", filepath.Join(dir, "missing.yaml"), "--consumer", "bob"}, "k", 1},
	} {
		if got := cmdKeyAuth(tc.args, strings.NewReader(tc.in)); got != tc.want {
			t.Errorf("weir key-auth %v: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}

func TestReadKey(t *testing.T) {
	for in, want := range map[string]string{"k1\n": "k1", "k2": "k2", "k3\r\nmore\n": "k3"} {
		if got, err := readKey(strings.NewReader(in)); err != nil || string(got) != want {
			t.Errorf("readKey(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "\n"} {
		if _, err := readKey(strings.NewReader(in)); err == nil {
			t.Errorf("readKey(%q) accepted", in)
		}
	}
}
