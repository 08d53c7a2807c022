package luapattern

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzEach: any pattern over any subject ends, within its budget, with
// matches or an *Error, never another panic.
func FuzzEach(f *testing.F) {
	for _, seed := range [][2]string{
		{"(%w+)=(%w+)", "a=1, b=2"}, {".-.-.-b", strings.Repeat("a", 40)}, {"%b()", "(a(b)c)"},
		{"[%a-]+", "x-y z"}, {"()", "abc"}, {"%", "x"}, {"[", "x"}, {"(()", "x"}, {"%1", "aa"},
		{"^(a*)%1$", "aaaa"}, {"[^%d]", "1a"}, {"%f[%w]", "x"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pat, subj string) {
		b := Budget{Steps: 100000}
		n := 0
		err := Each(&b, pat, []byte(subj), 0, -1, func(m *MatchData) bool {
			if s, e := m.Capture(0), m.Capture(1); s < 0 || e > len(subj) || s > e {
				t.Fatalf("match [%d,%d] outside the subject of %d bytes", s, e, len(subj))
			}
			n++
			return n < 1000
		})
		if err == nil && b.Steps < 0 {
			t.Fatal("the budget went negative without ErrBudget")
		}
	})
}

// TestBudget: a pattern that backtracks for minutes stops at its budget.
func TestBudget(t *testing.T) {
	b := Budget{Steps: 1_000_000}
	err := Each(&b, ".-.-.-.-.-b", []byte(strings.Repeat("a", 600)), 0, 1, func(*MatchData) bool { return false })
	if err != ErrBudget {
		t.Fatalf("error = %v, want ErrBudget", err)
	}
}

// TestBudgetScans: %b and back-references scan the subject inside one
// step; the scan is charged, so they cannot go quadratic unbudgeted.
func TestBudgetScans(t *testing.T) {
	for _, tt := range [][2]string{
		{"%b()", strings.Repeat("(", 1<<16)},
		{"(a*)%1b", strings.Repeat("a", 1<<14)},
	} {
		b := Budget{Steps: 1_000_000}
		err := Each(&b, tt[0], []byte(tt[1]), 0, -1, func(*MatchData) bool { return true })
		if err != ErrBudget {
			t.Errorf("%s: error = %v, want ErrBudget", tt[0], err)
		}
	}
}

// TestPlainMatchesGeneral: a pattern without specials (eachPlain, found
// with bytes.Index) gives the matches the matcher gives for the same
// string (here as the capture "(lit)", which takes the general path).
func TestPlainMatchesGeneral(t *testing.T) {
	spans := func(p, s string, offset, limit int) (out [][2]int) {
		b := &Budget{Steps: 1 << 30}
		if err := Each(b, p, []byte(s), offset, limit, func(m *MatchData) bool {
			out = append(out, [2]int{m.Capture(0), m.Capture(1)})
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, s := range []string{"", "a", "aaaa", "abcabcab", "xaax,ya,,a", "héllo wörld"} {
		for _, lit := range []string{"a", "aa", "ab", ",", "ö", "zz"} {
			for _, offset := range []int{0, 1, 3} {
				for _, limit := range []int{-1, 1, 2} {
					if offset > len(s) {
						continue
					}
					got, want := spans(lit, s, offset, limit), spans("("+lit+")", s, offset, limit)
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("%q in %q from %d, limit %d: plain %v, matcher %v", lit, s, offset, limit, got, want)
					}
				}
			}
		}
	}
}
