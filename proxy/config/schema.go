package config

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/weirgw/weir/sdk"
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
	// credentialsType reads as the mapping of lists it is written as.
	credentialsType = reflect.TypeOf(sdk.Credentials(nil))
	credentialsMap  = reflect.TypeOf(map[string][]json.RawMessage(nil))
)

type walker struct {
	e      *errs
	lookup LookupFunc
	steps  []step // where the walk is (place)
}

// walk checks n against t, expanding variables and turning expanded
// strings into numbers or booleans where t asks for one.
func (w *walker) walk(n *node, t reflect.Type) {
	if n.kind == kString && !w.expand(n) {
		return
	}
	if n.kind == kNull {
		// null reads as "not set", as encoding/json does: `admin:` with
		// nothing under it leaves the admin listener off.
		return
	}
	w.check(n, t)
}

// check is walk after expansion, for a value that is not null.
func (w *walker) check(n *node, t reflect.Type) {
	switch t {
	case rawType:
		w.raw(n)
		return
	case credentialsType:
		w.check(n, credentialsMap)
		return
	case durationType:
		if n.kind != kString {
			w.mismatch(n, `a duration such as "1s" or "250ms"`)
			return
		}
		var d Duration
		if err := d.UnmarshalJSON(appendJSONString(nil, n.str)); err != nil {
			w.fail(n, "%v", err)
		}
		return
	case listenersType:
		if n.kind != kList {
			w.check(n, listenerType)
			return
		}
		for i, it := range n.items {
			w.at(i, "")
			w.walk(it, listenerType)
			w.up()
		}
		return
	case listenerType:
		switch n.kind {
		case kString:
			return
		case kMap:
			// The object form: checked as the struct it is, below.
		default:
			w.mismatch(n, `an address such as ":8080" or an object {address, tls}`)
			return
		}
	case stringListType:
		if n.kind == kString {
			return
		}
		if n.kind != kList {
			w.mismatch(n, "a string or a list of strings")
			return
		}
		for i, it := range n.items {
			w.at(i, "")
			w.walk(it, t.Elem())
			w.up()
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.check(n, t.Elem())
	case reflect.Struct:
		if n.kind != kMap {
			w.mismatch(n, "a mapping")
			return
		}
		fs := fieldsOf(t)
		for i, k := range n.keys {
			w.at(-1, k)
			if f, ok := fs.byName[k]; ok {
				w.walk(n.items[i], t.Field(f).Type)
			} else {
				w.fail(n.items[i], "unknown key %q%s", k, didYouMean(k, fs.names))
			}
			w.up()
		}
	case reflect.Slice:
		if n.kind != kList {
			w.mismatch(n, "a list")
			return
		}
		for i, it := range n.items {
			w.at(i, "")
			w.walk(it, t.Elem())
			w.up()
		}
	case reflect.Map:
		if n.kind != kMap {
			w.mismatch(n, "a mapping")
			return
		}
		for i, k := range n.keys {
			w.at(-1, k)
			w.walk(n.items[i], t.Elem())
			w.up()
		}
	case reflect.String:
		if n.kind != kString {
			if n.kind == kNumber || n.kind == kBool {
				// The value is kept as the string it was meant to be, so
				// that what refers to it (a route's service) still finds
				// it and reports nothing more.
				at := w.place()
				w.e.add(at, "expected a string, got %s: quote it (%q)", n.describe(), n.describe())
				w.e.refused = append(w.e.refused, at)
				*n = node{kind: kString, str: n.describe()}
				return
			}
			w.mismatch(n, "a string")
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
			w.mismatch(n, "true or false")
		}
	case reflect.Int, reflect.Int64:
		w.integer(n, t.Bits())
	case reflect.Float64:
		w.float(n)
	default:
		panic(fmt.Sprintf("config: schema type %v (at %s) is not handled by the schema check", t, w.place()))
	}
}

func (w *walker) integer(n *node, bits int) {
	s := n.str
	if n.kind == kString && n.fromEnv {
		s = strings.TrimSpace(s)
	} else if n.kind != kNumber {
		w.mismatch(n, "an integer")
		return
	}
	v, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			w.fail(n, "%s is out of range for an integer", s)
			return
		}
		w.mismatch(n, "an integer")
		return
	}
	*n = node{kind: kNumber, str: strconv.FormatInt(v, 10)}
}

func (w *walker) float(n *node) {
	s := n.str
	if n.kind == kString && n.fromEnv {
		s = strings.TrimSpace(s)
	} else if n.kind != kNumber {
		w.mismatch(n, "a number")
		return
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		if n.kind == kNumber {
			w.fail(n, "%s is out of range for a number", s)
			return
		}
		w.mismatch(n, "a number")
		return
	}
	*n = node{kind: kNumber, str: strconv.FormatFloat(v, 'g', -1, 64)}
}

func (w *walker) mismatch(n *node, want string) {
	from := ""
	if n.fromEnv {
		from = " (after ${...} expansion)"
	}
	w.fail(n, "expected %s, got %s%s", want, n.describe(), from)
}

// fail reports a value the schema refuses and leaves it out of the config
// (it decodes as null, "not set"), so that the rest of the document can
// still be decoded, validated and its plugins checked in the same run.
func (w *walker) fail(n *node, format string, args ...any) {
	at := w.place()
	w.e.add(at, format, args...)
	w.e.refused = append(w.e.refused, at)
	n.drop = true
}

// expand runs ${VAR} expansion on a string node in place.
func (w *walker) expand(n *node) bool {
	if w.lookup == nil {
		return true
	}
	v, used, err := expand(n.str, w.lookup)
	if err != nil {
		w.fail(n, "%v", err)
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
func (w *walker) raw(n *node) {
	switch n.kind {
	case kString:
		if !w.expand(n) {
			return
		}
		if n.fromEnv && n.plain {
			*n = *resolvePlain(n.str)
		}
	case kList:
		for i, it := range n.items {
			w.at(i, "")
			w.raw(it)
			w.up()
		}
	case kMap:
		for i, k := range n.keys {
			w.at(-1, k)
			w.raw(n.items[i])
			w.up()
		}
	}
}

// The walk keeps the place it is at as a stack of steps and writes it
// out (place) only for an error: it visits every value, and writing each
// one's place ("consumers[123456].credentials.key_auth[0]") was a second
// of reading a million consumers.
type step struct {
	key string // a mapping key, when idx < 0
	idx int    // a list index
}

// at steps into a list item (i >= 0) or a mapping's key k; up steps back.
func (w *walker) at(i int, k string) { w.steps = append(w.steps, step{key: k, idx: i}) }
func (w *walker) up()                { w.steps = w.steps[:len(w.steps)-1] }

// place is where the walk is, as errors name it.
func (w *walker) place() string {
	p := ""
	for _, s := range w.steps {
		if s.idx >= 0 {
			p = index(p, s.idx)
		} else {
			p = key(p, s.key)
		}
	}
	return p
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
