package router

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"github.com/weirgw/weir/sdk"
)

// maxSegments bounds the segments of a prefix or parameter pattern, so
// that Match can walk them with fixed arrays on its stack.
const maxSegments = 64

type patternKind uint8

const (
	kindPrefix patternKind = iota
	kindExact
	kindParam
	kindRegex
)

// pattern is one parsed path pattern.
type pattern struct {
	kind patternKind
	// prefix: the literal segments and whether the pattern ended in "/";
	// exact: path is the whole path.
	path  string
	segs  []string
	slash bool
	// param: one entry per segment; a parameter segment has its name in
	// param and an empty lit.
	psegs []pseg
	nlit  int
	// regex
	re     *regexp.Regexp
	relit  string   // literal every match starts with at offset 0, "" if unknown
	reneed string   // literal every match contains, "" if unknown
	groups []string // name per capture group index (1-based: groups[0] unused); "" for unnamed
	named  int
}

type pseg struct {
	lit   string
	param string
}

// parsePath validates one configured path pattern. msg is the error for
// RouteError.Msg ("" when valid).
func parsePath(p string) (pat pattern, msg string) {
	q := fmt.Sprintf("%q", p)
	switch {
	case p == "":
		return pat, `"" is empty; write "/" to match every path`
	case p[0] == '~':
		return parseRegex(p)
	case p[0] == '=':
		if len(p) < 2 || p[1] != '/' {
			return pat, q + ` is an exact path and must start with "=/", like "=/users"`
		}
		if m := checkLiteralPath(p, p[1:]); m != "" {
			return pat, m
		}
		if strings.ContainsAny(p, "{}") {
			return pat, fmt.Sprintf("%s: an exact path cannot have parameters; remove the \"=\" to capture them (%q)", q, p[1:])
		}
		return pattern{kind: kindExact, path: p[1:]}, ""
	case p[0] != '/':
		return pat, q + ` must start with "/", "=/" or "~"`
	}
	if m := checkLiteralPath(p, p); m != "" {
		return pat, m
	}
	if strings.ContainsAny(p, "{}") {
		return parseParams(p)
	}
	pat = pattern{kind: kindPrefix, path: p}
	rest := p[1:]
	if strings.HasSuffix(rest, "/") || rest == "" {
		pat.slash = true
		rest = strings.TrimSuffix(rest, "/")
	}
	if rest != "" {
		pat.segs = strings.Split(rest, "/")
	}
	if len(pat.segs) > maxSegments {
		return pattern{}, fmt.Sprintf("%s has %d segments; at most %d are allowed", q, len(pat.segs), maxSegments)
	}
	return pat, ""
}

// checkLiteralPath refuses what a normalized request path never contains,
// since such a pattern could never match (the proxy percent-decodes the
// path, resolves dot segments and merges "//" before routing).
func checkLiteralPath(orig, p string) string {
	q := fmt.Sprintf("%q", orig)
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return q + " contains a control character; remove it"
		}
	}
	if strings.IndexByte(p, '?') >= 0 {
		return q + ` contains "?"; a path pattern matches the path only, not the query string`
	}
	if strings.IndexByte(p, '#') >= 0 {
		return q + ` contains "#"; clients never send the fragment`
	}
	if strings.Contains(p, "//") {
		return fmt.Sprintf("%s contains \"//\", which a normalized request path never has; write %q", q, collapseSlashes(orig))
	}
	for _, s := range strings.Split(p[1:], "/") {
		if s == "." || s == ".." {
			return q + ` contains a "." or ".." segment, which a normalized request path never has; write the resolved path`
		}
	}
	return ""
}

func collapseSlashes(s string) string {
	for strings.Contains(s, "//") {
		s = strings.ReplaceAll(s, "//", "/")
	}
	return s
}

func parseParams(p string) (pattern, string) {
	q := fmt.Sprintf("%q", p)
	if strings.Count(p, "{") != strings.Count(p, "}") {
		return pattern{}, q + ` has an unbalanced "{" or "}"; write a parameter as "{name}"`
	}
	raw := strings.Split(p[1:], "/")
	if len(raw) > maxSegments {
		return pattern{}, fmt.Sprintf("%s has %d segments; at most %d are allowed", q, len(raw), maxSegments)
	}
	pat := pattern{kind: kindParam, path: p, psegs: make([]pseg, len(raw))}
	seen := map[string]bool{}
	for i, s := range raw {
		if !strings.ContainsAny(s, "{}") {
			pat.psegs[i] = pseg{lit: s}
			pat.nlit++
			continue
		}
		if strings.Count(s, "{") != strings.Count(s, "}") || strings.Index(s, "}") < strings.Index(s, "{") {
			return pattern{}, q + ` has an unbalanced "{" or "}"; write a parameter as "{name}"`
		}
		if s[0] != '{' || s[len(s)-1] != '}' || strings.Count(s, "{") != 1 {
			return pattern{}, fmt.Sprintf("%s has %q: a parameter must be a whole segment, like \"/users/{id}\"", q, s)
		}
		name := s[1 : len(s)-1]
		if !sdk.ValidParamName(name) {
			return pattern{}, fmt.Sprintf(`%s has the invalid parameter name %q; use letters, digits and "_", not starting with a digit`, q, name)
		}
		if seen[name] {
			return pattern{}, fmt.Sprintf("%s uses the parameter name %q twice; give each parameter its own name", q, name)
		}
		seen[name] = true
		pat.psegs[i] = pseg{param: name}
	}
	if n := len(seen); n > sdk.MaxParams {
		return pattern{}, fmt.Sprintf("%s has %d parameters; at most %d are allowed", q, n, sdk.MaxParams)
	}
	return pat, ""
}

func parseRegex(p string) (pattern, string) {
	q := fmt.Sprintf("%q", p)
	expr := p[1:]
	if expr == "" {
		return pattern{}, q + ` has no regular expression after "~"; write one, like "~^/v[0-9]+/"`
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return pattern{}, fmt.Sprintf("%s is not a valid regular expression (%v); fix the expression after \"~\" (Go RE2 syntax)", q, err)
	}
	pat := pattern{kind: kindRegex, path: p, re: re, groups: re.SubexpNames()}
	seen := map[string]bool{}
	for _, name := range pat.groups[1:] {
		if name == "" {
			continue
		}
		if seen[name] {
			return pattern{}, fmt.Sprintf("%s names the group %q twice; give each named group its own name", q, name)
		}
		seen[name] = true
		pat.named++
	}
	if pat.named > sdk.MaxParams {
		return pattern{}, fmt.Sprintf("%s has %d named groups; at most %d are allowed", q, pat.named, sdk.MaxParams)
	}
	pat.relit = anchoredLiteral(expr)
	if sre, err := syntax.Parse(expr, syntax.Perl); err == nil {
		pat.reneed = requiredLiteral(sre.Simplify())
		if len(pat.reneed) <= len(pat.relit) || strings.ContainsRune(pat.reneed, utf8.RuneError) {
			pat.reneed = "" // the prefix test already covers it, or see anchoredLiteral
		}
	}
	return pat, ""
}

// anchoredLiteral returns the literal that every match of expr starts
// with when expr is anchored at the start of the text ("^/v1/(.*)" →
// "/v1/"), so Match can skip the regex with a cheap prefix test. It
// returns "" when it cannot tell.
func anchoredLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return ""
	}
	var b strings.Builder
	for _, s := range re.Sub[1:] {
		for s.Op == syntax.OpCapture && len(s.Sub) == 1 {
			s = s.Sub[0]
		}
		if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
			break
		}
		b.WriteString(string(s.Rune))
	}
	// U+FFFD also matches invalid UTF-8 in the path, which a byte prefix
	// test would not: give up rather than skip a matching regex.
	if strings.ContainsRune(b.String(), utf8.RuneError) {
		return ""
	}
	return b.String()
}

// requiredLiteral returns the longest literal that every match of re
// contains ("" when none is known), so that Match can skip the regex with
// a substring search: a route table of regexes that differ in a literal
// ("/resource12/") then costs one fast search per regex instead of one
// regex run. It only looks through concatenations, captures and
// repetitions of at least one; case-folded literals do not count.
func requiredLiteral(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return ""
		}
		return string(re.Rune)
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiteral(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiteral(re.Sub[0])
		}
	case syntax.OpConcat:
		best, run := "", ""
		for _, sub := range re.Sub {
			for sub.Op == syntax.OpCapture {
				sub = sub.Sub[0]
			}
			if sub.Op == syntax.OpLiteral && sub.Flags&syntax.FoldCase == 0 {
				run += string(sub.Rune) // adjacent literals form one run
			} else {
				run = ""
				if l := requiredLiteral(sub); len(l) > len(best) {
					best = l
				}
			}
			if len(run) > len(best) {
				best = run
			}
		}
		return best
	}
	return ""
}
