package config

import (
	"fmt"
	"strings"
)

// Environment variables in config values.
//
//	${NAME}            the variable's value; an error when it is not set
//	${NAME:-default}   the value, or default when it is unset or empty
//	$$                 a literal $
//
// Any other $ is kept as written, so regular expressions such as
// "~^/v1/users$" need no escaping. A default is taken literally up to the
// first "}" (no nesting). Expansion runs on string values of the parsed
// tree, after YAML or JSON parsing, so a variable can never add keys,
// lists or mappings; mapping keys are never expanded.
//
// Types: where the schema wants a number or a boolean, a string that
// expansion changed is read as one (`retries: "${RETRIES}"` works, while
// `retries: "3"` is still a type error). Inside plugin configs and consumer
// credentials, which this package does not know, an unquoted YAML value
// is read again after expansion as YAML would read it (`rate: ${RATE}`
// gives a number, `rate: "${RATE}"` a string); JSON strings stay strings.
// Note that YAML ends an unquoted value at "{" or "}" inside a flow
// mapping or list ({...}, [...]): quote references there.

// LookupFunc finds an environment variable, like os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// expand replaces variable references in s. usedEnv reports whether a
// ${...} reference was substituted (not merely a $$ unescaped).
func expand(s string, lookup LookupFunc) (out string, usedEnv bool, err error) {
	if strings.IndexByte(s, '$') < 0 {
		return s, false, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", false, fmt.Errorf("unterminated %q: close it with } or write $${ for a literal ${", clip(s[i:], 30))
			}
			ref := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validEnvName(name) {
				return "", false, fmt.Errorf("invalid variable reference ${%s}: a name is letters, digits and _, not starting with a digit (write $$ for a literal $)", clip(ref, 40))
			}
			v, ok := lookup(name)
			switch {
			case hasDef && (!ok || v == ""):
				v = def
			case !ok:
				return "", false, fmt.Errorf("environment variable %s is not set: set it or give a default with ${%s:-value}", name, name)
			}
			b.WriteString(v)
			usedEnv = true
			i += 2 + end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	return b.String(), usedEnv, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
