package admin

import (
	"slices"
	"testing"

	"github.com/weirgw/weir/proxy/config"
)

func TestIfMatch(t *testing.T) {
	const cur = `"abc"`
	yes := func() bool { return true }
	no := func() bool { return false }
	for _, c := range []struct {
		values []string
		exists func() bool
		want   bool
	}{
		{[]string{`"abc"`}, yes, true},
		{[]string{`"old"`}, yes, false},
		{[]string{`W/"abc"`}, yes, false}, // strong comparison
		{[]string{`"old", "abc"`}, yes, true},
		{[]string{`"old"`, `"abc"`}, yes, true}, // several field lines
		{[]string{`*`}, yes, true},
		{[]string{`*`}, no, false}, // "*" needs a current representation
		{[]string{`abc`}, yes, false},
	} {
		if got := ifMatch(c.values, cur, c.exists); got != c.want {
			t.Errorf("If-Match %q against %s: %v, want %v", c.values, cur, got, c.want)
		}
	}
}

func TestDiffNamed(t *testing.T) {
	p := func(names ...string) []config.Plugin {
		var out []config.Plugin
		for _, n := range names {
			out = append(out, config.Plugin{Name: n})
		}
		return out
	}
	name := func(x config.Plugin) string { return x.Name }
	d := diffNamed(p("cors", "auth", "auth"), p("auth", "cors", "log"), name)
	if !slices.Equal(d.Added, []string{"log"}) || !slices.Equal(d.Removed, []string{"auth#2"}) ||
		len(d.Changed) != 0 || !d.Reordered {
		t.Fatalf("diff: %+v", d)
	}
	if d := diffNamed(p("a", "b"), p("a", "b"), name); !d.empty() {
		t.Fatalf("equal lists differ: %+v", d)
	}
}
