package config

import (
	"fmt"
	"strconv"
	"strings"
)

// TopLevel is the place of errors about the document as a whole (an empty
// file, a list where a mapping belongs, a YAML syntax error without a line).
const TopLevel = "top level"

// Error is one problem in a config file: where it is and what to do about
// it. It prints as "file: place: msg".
type Error struct {
	// File is the file name as the operator gave it.
	File string
	// Place is where in the document the problem is, as a path of keys and
	// list indices ("routes[2].plugins[0]"), "line N" for syntax errors, or
	// TopLevel.
	Place string
	// Msg states the problem and the fix.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Place != "" {
		b.WriteString(e.Place)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one file, in document order. Parse
// and Validate return it (as error) so that an operator fixes a file in one
// round instead of one error per run.
type ErrorList []*Error

// Error prints one error a line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Lines returns each error as its own line, for `weir validate` and the
// admin API's 400 answer.
func (l ErrorList) Lines() []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.Error()
	}
	return out
}

// MaxErrors is the most errors reported for one file. Past it the list
// ends with a line saying so: a hostile document (a duplicate key inside
// a YAML anchor used a million times) must not produce a million lines,
// and no operator reads past the first screens anyway.
const MaxErrors = 200

// errs collects errors while a document is parsed or validated.
type errs struct {
	file    string
	list    ErrorList
	dropped int
	// refused are the places of values the schema check refused (see
	// walker.fail): Check does not report what follows from them.
	refused []string
}

func (e *errs) add(place, format string, args ...any) {
	if len(e.list) >= MaxErrors {
		e.dropped++
		return
	}
	if place == "" {
		place = TopLevel
	}
	e.list = append(e.list, &Error{File: e.file, Place: place, Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	if e.dropped > 0 {
		return append(e.list, &Error{File: e.file, Place: TopLevel, Msg: fmt.Sprintf("%d more errors not shown; fix these first", e.dropped)})
	}
	return e.list
}

// key extends a place with a mapping key: "routes[0]" + "name" gives
// "routes[0].name". Keys that would be ambiguous in that notation (dots,
// brackets, spaces, empty) are quoted: `headers["a.b"]`.
func key(place, k string) string {
	if !plainKey(k) {
		return place + "[" + strconv.Quote(k) + "]"
	}
	if place == "" {
		return k
	}
	return place + "." + k
}

// index extends a place with a list index: "routes" + 2 gives "routes[2]".
func index(place string, i int) string {
	return place + "[" + strconv.Itoa(i) + "]"
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// didYouMean returns ` (did you mean "x"?)` when one of known is close to
// got by edit distance, and "" otherwise. Case differences count as close:
// "Listen" suggests "listen".
func didYouMean(got string, known []string) string {
	best, bestD := "", -1
	lg := strings.ToLower(got)
	for _, k := range known {
		d := editDistance(lg, strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD < 0 {
		return ""
	}
	// A third of the word may be wrong, at least one edit and at most
	// three: "rate_limt" finds "rate_limit", "foo" does not find "cors".
	limit := len(got) / 3
	if limit < 1 {
		limit = 1
	}
	if limit > 3 {
		limit = 3
	}
	if bestD > limit {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of two adjacent
// bytes each cost one, so "rate_limt" is one edit from "rate_limit" and
// "lsiten" one from "listen".
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Long keys are not typos of short ones; avoid quadratic work on
		// hostile input.
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// quoteList formats names for messages: `users, orders`.
func quoteList(names []string) string {
	return strings.Join(names, ", ")
}
