package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
)

// ParseItem reads one object of the config — a service, a route, a
// consumer or a target, as the admin API receives them — into dst, a
// pointer to that type. It goes the way of a config file (see ParseEnv):
// the same readers (duplicate keys and data after the value are errors),
// the same schema check (unknown keys with a suggestion, wrong types) and
// the same strict decoding, so an object means the same thing whether it
// comes in a file or in an admin write. file names the body in errors and
// picks the format as in ParseEnv. ${VAR} references are not expanded: an
// admin write must not read the gateway's environment.
//
// The object must be a mapping: an empty body or null is an error, never
// an empty object, since writing one would wipe what it replaces.
func ParseItem(file string, data []byte, dst any) error {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: ParseItem needs a pointer to a struct, got %T", dst))
	}
	t = t.Elem()
	what := strings.ToLower(t.Name())
	e := &errs{file: file}
	if len(data) > MaxDocumentBytes {
		e.add(TopLevel, "the body is larger than %d MiB", MaxDocumentBytes>>20)
		return e.err()
	}
	data = stripBOM(data)
	if len(bytes.TrimSpace(data)) == 0 {
		e.add(TopLevel, "the body is empty: send the %s as a JSON object", what)
		return e.err()
	}
	root := readTree(file, data, e, false)
	if root == nil {
		return e.err()
	}
	if root.kind != kMap {
		// The schema check reads null as "not set", which for a whole
		// object would decode to an empty one.
		e.add(TopLevel, "expected a %s (a mapping), got %s", what, root.describe())
		return e.err()
	}
	w := &walker{e: e}
	w.walk(root, t)
	if len(e.list) > 0 {
		return e.err()
	}
	if err := decodeTree(root, dst); err != nil {
		// As in ParseEnv: the schema check accepts exactly what the
		// decoder accepts.
		e.add(TopLevel, "cannot decode the %s (a bug in the schema check, please report it): %v", what, err)
		return e.err()
	}
	return nil
}
