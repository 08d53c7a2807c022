package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// decodeTree sets *v from the tree n exactly as encoding/json, with
// DisallowUnknownFields, sets it from n.appendJSON: the same values, the
// same nulls, the same Unmarshaler calls (Duration, Listeners...). It
// skips writing the whole document as JSON and reading it back, which
// was half the cost of reading a 10,000-route config (issue 17). The
// schema check has refused what the decoder would (a value it refused
// is dropped, as appendJSON drops it), so an error here is a bug in the
// schema check; TestDecodeTreeMatchesEncodingJSON holds the two
// decoders to the same result.
func decodeTree(n *node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decodeTree: need a non-nil pointer, got %T", v)
	}
	return decodeValue(n, rv.Elem())
}

var (
	nullNode        = &node{kind: kNull}
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// decodeValue sets the addressable v from n.
func decodeValue(n *node, v reflect.Value) error {
	if n.drop {
		n = nullNode // appendJSON writes a refused value as null
	}
	t := v.Type()
	if t == rawType {
		// json.RawMessage.UnmarshalJSON keeps a copy of the bytes, null
		// included.
		v.SetBytes(n.appendJSON(nil))
		return nil
	}
	if n.kind == kNull {
		// encoding/json's indirect: a named non-pointer type with an
		// UnmarshalJSON method gets "null"; a pointer, map, slice or
		// interface becomes nil; anything else is left as it is.
		if t.Kind() != reflect.Pointer && t.Name() != "" && reflect.PointerTo(t).Implements(unmarshalerType) {
			return v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON([]byte("null"))
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return nil
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return decodeValue(n, v.Elem())
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(n.appendJSON(nil))
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.kind != kMap {
			return mismatch(n, t)
		}
		fields := fieldsOf(t)
		for i, k := range n.keys {
			it := n.items[i]
			if it.drop {
				continue // appendJSON leaves a refused key out
			}
			fi, ok := fields.byName[k]
			if !ok {
				fi, ok = fields.fold(k)
			}
			if !ok {
				return fmt.Errorf("json: unknown field %q", k)
			}
			if err := decodeValue(it, v.Field(fi)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if n.kind != kList {
			return mismatch(n, t)
		}
		s := reflect.MakeSlice(t, len(n.items), len(n.items))
		for i, it := range n.items {
			if err := decodeValue(it, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if n.kind != kMap || t.Key().Kind() != reflect.String {
			return mismatch(n, t)
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(t, len(n.keys)))
		}
		elem := reflect.New(t.Elem()).Elem()
		for i, k := range n.keys {
			it := n.items[i]
			if it.drop {
				continue
			}
			elem.SetZero()
			if err := decodeValue(it, elem); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), elem)
		}
		return nil
	case reflect.String:
		if n.kind != kString {
			return mismatch(n, t)
		}
		v.SetString(n.str)
		return nil
	case reflect.Bool:
		if n.kind != kBool {
			return mismatch(n, t)
		}
		v.SetBool(n.b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.kind != kNumber {
			return mismatch(n, t)
		}
		x, err := strconv.ParseInt(n.str, 10, 64)
		if err != nil || v.OverflowInt(x) {
			return mismatch(n, t)
		}
		v.SetInt(x)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.kind != kNumber {
			return mismatch(n, t)
		}
		x, err := strconv.ParseUint(n.str, 10, 64)
		if err != nil || v.OverflowUint(x) {
			return mismatch(n, t)
		}
		v.SetUint(x)
		return nil
	case reflect.Float32, reflect.Float64:
		if n.kind != kNumber {
			return mismatch(n, t)
		}
		x, err := strconv.ParseFloat(n.str, t.Bits())
		if err != nil || v.OverflowFloat(x) {
			return mismatch(n, t)
		}
		v.SetFloat(x)
		return nil
	}
	return mismatch(n, t)
}

func mismatch(n *node, t reflect.Type) error {
	return fmt.Errorf("json: cannot unmarshal %s into Go value of type %s", n.describe(), t)
}

// fold finds a field whose key equals k but for case, which encoding/json
// accepts too.
func (f *fields) fold(k string) (int, bool) {
	for _, name := range f.names {
		if strings.EqualFold(name, k) {
			return f.byName[name], true
		}
	}
	return 0, false
}
