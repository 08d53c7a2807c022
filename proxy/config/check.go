package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// CheckFunc checks what only a later stage knows, such as the proxy
// building each plugin from its config. valid tells whether cfg passed
// Validate: when it did not, cfg may lack values the schema refused, and
// only checks that do not depend on the rest of the config being right
// should run (each plugin's own config, say).
type CheckFunc func(cfg *Config, valid bool) error

// Check reads a config document and runs every stage on it in one pass:
// the schema check, ApplyDefaults, Validate and then check (nil skips
// it). A document that parses but has errors is still validated and
// checked, with the values the schema refused left out, so an operator
// sees every problem of a file in one run instead of one stage per run.
// Only a syntax error that leaves the document unreadable stops early.
//
// The errors come as one ErrorList in file order, without duplicates and
// without what follows from an error already reported (a value refused
// by the schema is not reported again as missing). The config is
// returned, with defaults applied, only when there is no error.
func Check(file string, data []byte, lookup LookupFunc, check CheckFunc) (*Config, error) {
	return CheckAdjusted(file, data, lookup, nil, check)
}

// CheckAdjusted is Check with adjust applied to the document once it is
// read and before anything validates it: settings given outside the file
// (`weir run --admin ADDR`) are held to the file's rules.
func CheckAdjusted(file string, data []byte, lookup LookupFunc, adjust func(*Config), check CheckFunc) (*Config, error) {
	c, err, direct := checkAdjusted(file, data, lookup, adjust, check, true, nil)
	if err != nil && direct {
		// The consumers were decoded without their tree, which errors
		// about them need to sort in file order: read the document
		// again the careful way. Only a config with errors pays this.
		c, err, _ = checkAdjusted(file, data, lookup, adjust, check, false, nil)
	}
	return c, err
}

// checkAdjusted is CheckAdjusted; direct lets the JSON reader decode the
// consumers without their tree, and the last result tells whether it did;
// memo, when not nil, reads YAML routes through it (Reader).
func checkAdjusted(file string, data []byte, lookup LookupFunc, adjust func(*Config), check CheckFunc, direct bool, memo *routeMemo) (*Config, error, bool) {
	e := &errs{file: file}
	c, root := parse(file, data, lookup, e, direct, memo)
	direct = root != nil && hasPre(root)
	if c == nil {
		return nil, e.err(), false
	}
	if adjust != nil {
		adjust(c)
	}
	schema := e.list
	dropped := e.dropped
	ApplyDefaults(c)
	var later []*Error
	verr := Validate(c, file)
	later = appendErrors(later, file, verr, &dropped)
	if check != nil {
		later = appendErrors(later, file, check(c, verr == nil && len(schema) == 0), &dropped)
	}
	all := append(append(ErrorList(nil), schema...), followups(e.refused, later)...)
	if len(all) == 0 && dropped == 0 {
		return c, nil, direct
	}
	all = dedupe(all)
	sortByPlace(all, root)
	if len(all) > MaxErrors {
		dropped += len(all) - MaxErrors
		all = all[:MaxErrors]
	}
	if dropped > 0 {
		all = append(all, &Error{File: file, Place: TopLevel, Msg: fmt.Sprintf("%d more errors not shown; fix these first", dropped)})
	}
	return nil, all, direct
}

// hasPre reports whether the JSON reader decoded root's consumers without
// their tree.
func hasPre(root *node) bool {
	for i, k := range root.keys {
		if k == "consumers" {
			return root.items[i].pre != nil
		}
	}
	return false
}

// LoadCheckAdjusted reads the config file at path and runs CheckAdjusted
// on it (with adjust, which may be nil) and the process environment for
// ${VAR} references.
func LoadCheckAdjusted(path string, adjust func(*Config), check CheckFunc) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return CheckAdjusted(path, data, os.LookupEnv, adjust, check)
}

// ReadFile reads a config file as LoadCheckAdjusted does, refusing one
// over MaxDocumentBytes; the error is an ErrorList naming the file.
func ReadFile(path string) ([]byte, error) { return readFile(path) }

// readFile reads a config file, refusing one over MaxDocumentBytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	defer f.Close()
	// Read one byte more than allowed to tell "exactly the limit" from
	// "over it" without trusting Stat (a FIFO or /dev/stdin has no size).
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentBytes+1))
	if err != nil {
		return nil, fileError(path, err)
	}
	return data, nil
}

// appendErrors adds the errors of one stage to list: an ErrorList's
// entries (its "more errors not shown" line counted in dropped) or any
// other error as one entry about file.
func appendErrors(list []*Error, file string, err error, dropped *int) []*Error {
	if err == nil {
		return list
	}
	var el ErrorList
	if !errors.As(err, &el) {
		return append(list, &Error{File: file, Place: TopLevel, Msg: err.Error()})
	}
	for _, e := range el {
		if n, ok := moreNotShown(e); ok {
			*dropped += n
			continue
		}
		list = append(list, e)
	}
	return list
}

// moreNotShown recognizes the line errs.err adds past MaxErrors.
func moreNotShown(e *Error) (int, bool) {
	if e.Place != TopLevel {
		return 0, false
	}
	num, ok := strings.CutSuffix(e.Msg, " more errors not shown; fix these first")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil
}

// followups drops the errors of later stages that follow from a value
// the schema refused (refused holds their places): such a value is left
// out of the config, so Validate may find it missing, and a plugin whose
// config lost a value may complain about it. Such an error is at the
// refused value's place or inside it; a plugin's is anywhere around it
// ("routes[0].plugins[1] (rate_limit)" against
// "routes[0].plugins[1].config.rate"). Other schema errors, such as a
// duplicate key (the first value is kept), hide nothing.
func followups(refused []string, later []*Error) []*Error {
	if len(refused) == 0 {
		return later
	}
	out := later[:0:0]
	for _, l := range later {
		lp, plugin := strings.CutSuffix(l.Place, ")")
		if plugin {
			if i := strings.LastIndex(lp, " ("); i >= 0 {
				lp = lp[:i]
			} else {
				lp, plugin = l.Place, false
			}
		}
		follows := false
		for _, r := range refused {
			if within(lp, r) || plugin && within(r, lp) {
				follows = true
				break
			}
		}
		if !follows {
			out = append(out, l)
		}
	}
	return out
}

// within reports whether place is outer or a place inside it.
func within(place, outer string) bool {
	if outer == TopLevel || outer == "" {
		return false
	}
	rest, ok := strings.CutPrefix(place, outer)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// dedupe drops repeated errors, keeping the first.
func dedupe(list ErrorList) ErrorList {
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, e := range list {
		s := e.Error()
		if seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, e)
	}
	return out
}

// sortByPlace orders errors by where their place is in the document, so
// that the errors of every stage read from the top of the file down.
// Errors of one place keep their order; errors about the document as a
// whole come first.
func sortByPlace(list ErrorList, root *node) {
	pos := make([][]int, len(list))
	for i, e := range list {
		pos[i] = position(root, e.Place)
	}
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lessPos(pos[idx[a]], pos[idx[b]]) })
	sorted := make(ErrorList, len(list))
	for i, j := range idx {
		sorted[i] = list[j]
	}
	copy(list, sorted)
}

// position follows a place ("routes[0].headers[\"a.b\"]", optionally
// followed by " (plugin)") down the tree and returns the index taken at
// each step: comparing these in order is comparing places in file order.
// It stops where the tree does (a key the config does not have), so a
// place outside the document sorts with its nearest written parent.
func position(n *node, place string) []int {
	var pos []int
	s := place
	for n != nil && s != "" {
		var k string
		idx := -1
		switch {
		case s[0] == '.':
			s = s[1:]
			continue
		case strings.HasPrefix(s, `["`):
			q, err := strconv.QuotedPrefix(s[1:])
			if err != nil || !strings.HasPrefix(s[1+len(q):], "]") {
				return pos
			}
			k, _ = strconv.Unquote(q)
			s = s[1+len(q)+1:]
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return pos
			}
			i, err := strconv.Atoi(s[1:end])
			if err != nil {
				return pos
			}
			idx = i
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, ".[ ")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return pos
			}
			k, s = s[:end], s[end:]
		}
		if idx >= 0 {
			if n.kind != kList || idx >= len(n.items) {
				return pos
			}
			pos = append(pos, idx)
			n = n.items[idx]
			continue
		}
		if n.kind != kMap {
			return pos
		}
		found := -1
		for i, nk := range n.keys {
			if nk == k {
				found = i
				break
			}
		}
		if found < 0 {
			return pos
		}
		pos = append(pos, found)
		n = n.items[found]
	}
	return pos
}

// lessPos orders positions in document order: a parent before its
// children, siblings by index.
func lessPos(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}
