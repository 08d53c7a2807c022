package transform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weirgw/weir/sdk"
)

// Template is a string in which "{name}" stands for the route parameter
// name, parsed once when the config loads. "{{" and "}}" are a literal "{"
// and "}". A Template is immutable and safe for concurrent use.
type Template struct {
	parts  []part
	params []string // parameter names in order of first use
	// lit is the whole value when the template has no parameter.
	lit string
}

// part is a literal (param == "") or a parameter.
type part struct {
	lit   string
	param string
}

// IsLiteral reports whether the template has no parameter.
func (t *Template) IsLiteral() bool { return len(t.params) == 0 }

// Literal is the template's value when IsLiteral.
func (t *Template) Literal() string { return t.lit }

// Params are the parameter names the template uses.
func (t *Template) Params() []string { return t.params }

var errUnbalanced = errors.New(`has an unbalanced "{" or "}"; write a parameter as {name} and a literal brace as {{ or }}`)

// ParseTemplate parses s. In strict mode (paths) every brace must belong
// to a parameter or an escape; otherwise a brace that does not form
// "{name}" is literal, so that values such as `{"a":1}` need no escaping.
func ParseTemplate(s string, strict bool) (Template, error) {
	var t Template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch ch {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(s[i+1:], '}')
			if end >= 0 && sdk.ValidParamName(s[i+1:i+1+end]) {
				name := s[i+1 : i+1+end]
				flush()
				t.parts = append(t.parts, part{param: name})
				if !contains(t.params, name) {
					t.params = append(t.params, name)
				}
				i += end + 1
				continue
			}
			if strict {
				return Template{}, errUnbalanced
			}
			lit.WriteByte(ch)
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			if strict {
				return Template{}, errUnbalanced
			}
			lit.WriteByte(ch)
		default:
			lit.WriteByte(ch)
		}
	}
	flush()
	if len(t.params) == 0 {
		for _, p := range t.parts {
			t.lit += p.lit
		}
	}
	if len(t.params) > sdk.MaxParams {
		return Template{}, fmt.Errorf("uses %d parameters; a route has at most %d", len(t.params), sdk.MaxParams)
	}
	return t, nil
}

// mapLiterals returns a copy of t whose literal parts went through f (the
// query encoder, so literals are encoded once, when the config loads).
func (t Template) mapLiterals(f func(string) string) Template {
	out := Template{params: t.params, parts: make([]part, len(t.parts))}
	for i, p := range t.parts {
		if p.param == "" {
			p.lit = f(p.lit)
		}
		out.parts[i] = p
	}
	if len(t.params) == 0 {
		out.lit = f(t.lit)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// param finds the route parameter name among the request's matched
// parameters. ok is false when the route did not capture it (a route with
// several paths, only some of which declare it); an empty capture is found
// with an empty value.
func param(c *sdk.Ctx, name string) (v []byte, ok bool) {
	for _, p := range c.Params() {
		if p.Name == name {
			return p.Value, true
		}
	}
	return nil, false
}

// appendTo renders t onto dst. esc, when not nil, encodes each parameter
// value (literal parts are encoded when the config loads). missing is the
// name of a parameter the request does not have ("" when all are there).
func (t *Template) appendTo(dst []byte, c *sdk.Ctx, esc func([]byte, []byte) []byte) (out []byte, missing string) {
	for i := range t.parts {
		p := &t.parts[i]
		if p.param == "" {
			dst = append(dst, p.lit...)
			continue
		}
		v, ok := param(c, p.param)
		if !ok {
			return dst, p.param
		}
		if esc != nil {
			dst = esc(dst, v)
		} else {
			dst = append(dst, v...)
		}
	}
	return dst, ""
}

// checkTemplateParams verifies, when the config loads, that every
// parameter t uses is one the route captures. b.Params nil on a route
// means the proxy did not say which parameters the route has: the check is
// then left to the request (a missing parameter fails it with a 500 that
// names the parameter). A global instance has no route and so no
// parameters.
func checkTemplateParams(t *Template, b *sdk.Build, plugin string) error {
	if t.IsLiteral() {
		return nil
	}
	if b.Route == "" {
		return fmt.Errorf("{%s} is a route parameter, but a global plugin has no route; configure %s on the route instead", t.params[0], plugin)
	}
	if b.Params == nil {
		return nil
	}
	for _, p := range t.params {
		if !contains(b.Params, p) {
			if len(b.Params) == 0 {
				return fmt.Errorf("{%s} is not a parameter of route %q, which has none; write a literal brace as {{", p, b.Route)
			}
			return fmt.Errorf("{%s} is not a parameter of route %q (it has %s)", p, b.Route, "{"+strings.Join(b.Params, "}, {")+"}")
		}
	}
	return nil
}
