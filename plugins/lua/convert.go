package lua

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	glua "github.com/yuin/gopher-lua"
)

// maxDepth bounds the nesting of tables converted to Go values (JSON bodies
// of weir.response.exit, weir.ctx.shared). It also stops a table that
// contains itself.
const maxDepth = 32

var errTooDeep = fmt.Errorf("tables nested more than %d deep (or a table that contains itself)", maxDepth)

// maxConvValues bounds how many values one conversion visits: a table
// that holds itself ten times is only 32 deep, but 10^32 values wide.
const maxConvValues = 100_000

var errTooBig = fmt.Errorf("the tables hold more than %d values or more bytes than memory_limit_mb allows (a table that contains itself?)", maxConvValues)

// convBudget is what is left to one conversion: values, and string bytes.
type convBudget struct{ values, bytes int64 }

func newConvBudget(memLimit int64) *convBudget {
	return &convBudget{values: maxConvValues, bytes: memLimit}
}

// toGo converts a Lua value to plain Go data: nil, bool, float64, string,
// []any (a table whose keys are exactly 1..n) or map[string]any (any other
// table; number keys become strings). An empty table is an empty map, so it
// encodes as {} in JSON. Functions, userdata and threads are refused.
func toGo(v glua.LValue, depth int, b *convBudget) (any, error) {
	if b.values--; b.values < 0 {
		return nil, errTooBig
	}
	switch v := v.(type) {
	case *glua.LNilType:
		return nil, nil
	case glua.LBool:
		return bool(v), nil
	case glua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New("NaN and infinite numbers have no JSON form")
		}
		return f, nil
	case glua.LString:
		if b.bytes -= int64(len(v)); b.bytes < 0 {
			return nil, errTooBig
		}
		return string(v), nil
	case *glua.LUserData:
		if v.Value == jsonNull {
			return nil, nil // cjson.null
		}
		return nil, fmt.Errorf("a %s cannot be converted (only nil, booleans, numbers, strings and tables)", v.Type())
	case *glua.LTable:
		if depth >= maxDepth {
			return nil, errTooDeep
		}
		return tableToGo(v, depth+1, b)
	default:
		return nil, fmt.Errorf("a %s cannot be converted (only nil, booleans, numbers, strings and tables)", v.Type())
	}
}

func tableToGo(t *glua.LTable, depth int, b *convBudget) (any, error) {
	n := t.MaxN()
	count := 0
	t.ForEach(func(glua.LValue, glua.LValue) { count++ })
	if n > 0 && n == count {
		arr := make([]any, n)
		for i := 1; i <= n; i++ {
			x, err := toGo(t.RawGetInt(i), depth, b)
			if err == errTooDeep || err == errTooBig {
				return nil, err
			}
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			arr[i-1] = x
		}
		return arr, nil
	}
	m := make(map[string]any, count)
	var err error
	t.ForEach(func(k, val glua.LValue) {
		if err != nil {
			return
		}
		var key string
		switch k := k.(type) {
		case glua.LString:
			key = string(k)
		case glua.LNumber:
			key = strconv.FormatFloat(float64(k), 'f', -1, 64)
		default:
			err = fmt.Errorf("a %s key cannot be converted (only string and number keys)", k.Type())
			return
		}
		x, e := toGo(val, depth, b)
		if e == errTooDeep || e == errTooBig {
			err = e
			return
		}
		if e != nil {
			err = fmt.Errorf("%s: %w", key, e)
			return
		}
		m[key] = x
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// toLua converts data produced by toGo or encoding/json into a Lua value
// owned by L.
func toLua(L *glua.LState, v any) glua.LValue {
	switch v := v.(type) {
	case nil:
		return glua.LNil
	case bool:
		return glua.LBool(v)
	case float64:
		return glua.LNumber(v)
	case string:
		return glua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, x := range v {
			t.RawSetInt(i+1, toLua(L, x))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, x := range v {
			t.RawSetString(k, toLua(L, x))
		}
		return t
	default:
		// Only the types above are ever produced; anything else is a bug.
		panic(fmt.Sprintf("lua: toLua: unexpected %T", v))
	}
}
