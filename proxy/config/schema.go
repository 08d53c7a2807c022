package config

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The schema check walks the tree and the Config type side by side. It
// finds what a strict JSON decoder would refuse, but reports every problem
// with its place instead of stopping at the first without one, and it
// expands ${VAR} references on the way (it knows which strings are
// config values and which are keys).

var (
	durationType   = reflect.TypeOf(Duration(0))
	stringListType = reflect.TypeOf(StringList(nil))
	rawType        = reflect.TypeOf(json.RawMessage(nil))
	listenersType  = reflect.TypeOf(Listeners(nil))
	listenerType   = reflect.TypeOf(Listener{})
	configType     = reflect.TypeOf(Config{})
)

type walker struct {
	e      *errs
	lookup LookupFunc
}

// walk checks n against t, expanding variables and turning expanded
// strings into numbers or booleans where t asks for one.
func (w *walker) walk(n *node, t reflect.Type, place string) {
	if n.kind == kString && !w.expand(n, place) {
		return
	}
	if n.kind == kNull {
		// null reads as "not set", as encoding/json does: `admin:` with
		// nothing under it leaves the admin listener off.
		return
	}
	w.check(n, t, place)
}

// check is walk after expansion, for a value that is not null.
func (w *walker) check(n *node, t reflect.Type, place string) {
	switch t {
	case rawType:
		w.raw(n, place)
		return
	case durationType:
		if n.kind != kString {
			w.mismatch(n, place, `a duration such as "1s" or "250ms"`)
			return
		}
		var d Duration
		if err := d.UnmarshalJSON(appendJSONString(nil, n.str)); err != nil {
			w.fail(n, place, "%v", err)
		}
		return
	case listenersType:
		if n.kind != kList {
			w.check(n, listenerType, place)
			return
		}
		for i, it := range n.items {
			w.walk(it, listenerType, index(place, i))
		}
		return
	case listenerType:
		switch n.kind {
		case kString:
			return
		case kMap:
			// The object form: checked as the struct it is, below.
		default:
			w.mismatch(n, place, `an address such as ":8080" or an object {address, tls}`)
			return
		}
	case stringListType:
		if n.kind == kString {
			return
		}
		if n.kind != kList {
			w.mismatch(n, place, "a string or a list of strings")
			return
		}
		for i, it := range n.items {
			w.walk(it, t.Elem(), index(place, i))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.check(n, t.Elem(), place)
	case reflect.Struct:
		if n.kind != kMap {
			w.mismatch(n, place, "a mapping")
			return
		}
		fs := fieldsOf(t)
		for i, k := range n.keys {
			f, ok := fs.byName[k]
			if !ok {
				w.fail(n.items[i], key(place, k), "unknown key %q%s", k, didYouMean(k, fs.names))
				continue
			}
			w.walk(n.items[i], t.Field(f).Type, key(place, k))
		}
	case reflect.Slice:
		if n.kind != kList {
			w.mismatch(n, place, "a list")
			return
		}
		for i, it := range n.items {
			w.walk(it, t.Elem(), index(place, i))
		}
	case reflect.Map:
		if n.kind != kMap {
			w.mismatch(n, place, "a mapping")
			return
		}
		for i, k := range n.keys {
			w.walk(n.items[i], t.Elem(), key(place, k))
		}
	case reflect.String:
		if n.kind != kString {
			if n.kind == kNumber || n.kind == kBool {
				// The value is kept as the string it was meant to be, so
				// that what refers to it (a route's service) still finds
				// it and reports nothing more.
				w.e.add(place, "expected a string, got %s: quote it (%q)", n.describe(), n.describe())
				w.e.refused = append(w.e.refused, place)
				*n = node{kind: kString, str: n.describe()}
				return
			}
			w.mismatch(n, place, "a string")
		}
	case reflect.Bool:
		if n.kind == kString && n.fromEnv {
			switch strings.TrimSpace(n.str) {
			case "true":
				*n = node{kind: kBool, b: true}
				return
			case "false":
				*n = node{kind: kBool, b: false}
				return
			}
		}
		if n.kind != kBool {
			w.mismatch(n, place, "true or false")
		}
	case reflect.Int, reflect.Int64:
		w.integer(n, place, t.Bits())
	case reflect.Float64:
		w.float(n, place)
	default:
		panic(fmt.Sprintf("config: schema type %v (at %s) is not handled by the schema check", t, place))
	}
}

func (w *walker) integer(n *node, place string, bits int) {
	s := n.str
	if n.kind == kString && n.fromEnv {
		s = strings.TrimSpace(s)
	} else if n.kind != kNumber {
		w.mismatch(n, place, "an integer")
		return
	}
	v, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			w.fail(n, place, "%s is out of range for an integer", s)
			return
		}
		w.mismatch(n, place, "an integer")
		return
	}
	*n = node{kind: kNumber, str: strconv.FormatInt(v, 10)}
}

func (w *walker) float(n *node, place string) {
	s := n.str
	if n.kind == kString && n.fromEnv {
		s = strings.TrimSpace(s)
	} else if n.kind != kNumber {
		w.mismatch(n, place, "a number")
		return
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		if n.kind == kNumber {
			w.fail(n, place, "%s is out of range for a number", s)
			return
		}
		w.mismatch(n, place, "a number")
		return
	}
	*n = node{kind: kNumber, str: strconv.FormatFloat(v, 'g', -1, 64)}
}

func (w *walker) mismatch(n *node, place, want string) {
	from := ""
	if n.fromEnv {
		from = " (after ${...} expansion)"
	}
	w.fail(n, place, "expected %s, got %s%s", want, n.describe(), from)
}

// fail reports a value the schema refuses and leaves it out of the config
// (it decodes as null, "not set"), so that the rest of the document can
// still be decoded, validated and its plugins checked in the same run.
func (w *walker) fail(n *node, place, format string, args ...any) {
	w.e.add(place, format, args...)
	w.e.refused = append(w.e.refused, place)
	n.drop = true
}

// expand runs ${VAR} expansion on a string node in place.
func (w *walker) expand(n *node, place string) bool {
	if w.lookup == nil {
		return true
	}
	v, used, err := expand(n.str, w.lookup)
	if err != nil {
		w.fail(n, place, "%v", err)
		return false
	}
	n.str = v
	n.fromEnv = used
	return true
}

// raw walks a part the schema does not describe (a plugin's config, a
// credential): every string is expanded, and an unquoted YAML scalar made
// of a variable is read again as YAML would read it, so `rate: ${RATE}`
// gives the plugin a number while `rate: "${RATE}"` stays a string.
func (w *walker) raw(n *node, place string) {
	switch n.kind {
	case kString:
		if !w.expand(n, place) {
			return
		}
		if n.fromEnv && n.plain {
			*n = *resolvePlain(n.str)
		}
	case kList:
		for i, it := range n.items {
			w.raw(it, index(place, i))
		}
	case kMap:
		for i, k := range n.keys {
			w.raw(n.items[i], key(place, k))
		}
	}
}

// fields describes a struct's JSON keys.
type fields struct {
	byName map[string]int // key → field index
	names  []string       // keys in declaration order, for suggestions
}

var fieldCache sync.Map // reflect.Type → *fields

func fieldsOf(t reflect.Type) *fields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*fields)
	}
	fs := &fields{byName: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fs.byName[name] = i
		fs.names = append(fs.names, name)
	}
	fieldCache.Store(t, fs)
	return fs
}
