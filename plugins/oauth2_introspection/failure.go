package oauth2introspection

import (
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/weirgw/weir/sdk"
)

// reason is why a request was refused.
type reason uint8

const (
	reasonMissing reason = iota
	reasonMalformed
	reasonTooLarge
	reasonInactive
	reasonError
	reasonScope
	numReasons
)

var reasonInfo = [numReasons]struct{ label, msg string }{
	reasonMissing:   {"missing", "missing bearer token"},
	reasonMalformed: {"malformed", "malformed token"},
	reasonTooLarge:  {"too_large", "token too large"},
	reasonInactive:  {"inactive", "token is not active"},
	reasonError:     {"introspection_error", "token introspection unavailable"},
	reasonScope:     {"insufficient_scope", "insufficient scope"},
}

// failures holds the per-reason status, counter and WWW-Authenticate value,
// all prepared in New.
type failures struct {
	status    [numReasons]int
	counters  [numReasons]*metrics.Counter
	challenge [numReasons][]byte
}

func newFailures(route, realm string, onError int, required []string) *failures {
	fs := &failures{}
	r := `Bearer realm="` + realm + `"`
	for i := reason(0); i < numReasons; i++ {
		info := reasonInfo[i]
		fs.counters[i] = metrics.GetOrCreateCounter(`weir_auth_failures_total{plugin="oauth2_introspection",route=` +
			quoteLabel(route) + `,reason="` + info.label + `"}`)
		fs.status[i] = 401
		switch i {
		case reasonMissing:
			// RFC 6750 §3.1: no error code when no credentials were sent.
			fs.challenge[i] = []byte(r)
		case reasonScope:
			// RFC 6750 §3.1: insufficient_scope is a 403 naming the scope.
			fs.status[i] = 403
			fs.challenge[i] = []byte(r + `, error="insufficient_scope", error_description="` + info.msg +
				`", scope="` + strings.Join(required, " ") + `"`)
		case reasonError:
			fs.status[i] = onError
			if onError == 401 {
				fs.challenge[i] = []byte(r + `, error="invalid_token", error_description="` + info.msg + `"`)
			}
		default:
			fs.challenge[i] = []byte(r + `, error="invalid_token", error_description="` + info.msg + `"`)
		}
	}
	return fs
}

func (fs *failures) fail(c *sdk.Ctx, r reason) sdk.Status {
	fs.counters[r].Inc()
	st := c.Fail(fs.status[r], reasonInfo[r].msg)
	if ch := fs.challenge[r]; ch != nil {
		// Deferred so it survives whatever the proxy does with the final
		// response, and set now for a caller that writes c.Response() as is.
		c.SetResponseHeader("WWW-Authenticate", ch)
		c.Response().Header.SetBytesV("WWW-Authenticate", ch)
	}
	return st
}

// quoteLabel quotes a Prometheus label value.
func quoteLabel(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '"':
			b = append(b, '\\', s[i])
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, s[i])
		}
	}
	return string(append(b, '"'))
}
