package bearer

import (
	"errors"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/weirgw/weir/plugins/internal/promlabel"
	"github.com/weirgw/weir/sdk"
)

// Refusal describes one reason a plugin refuses a request.
type Refusal struct {
	// Label is the reason label of weir_auth_failures_total.
	Label string
	// Status is the response status: 401 for a missing or bad token, 403
	// for insufficient scope, 503 when the gateway rather than the token
	// is at fault.
	Status int
	// Msg is the message of the gateway's JSON error.
	Msg string
	// Challenge is the WWW-Authenticate value sent with the refusal (see
	// Challenge, ErrorChallenge), or "" for none.
	Challenge string
}

// Failures answers a plugin instance's refusals: per reason R (a small
// enum starting at 0) a status, a message, a WWW-Authenticate value and a
// counter, all prepared in New. It is immutable and safe for concurrent
// use.
type Failures[R ~uint8] struct {
	reasons []failure
}

type failure struct {
	counter   *metrics.Counter
	status    int
	msg       string
	challenge []byte
}

// NewFailures prepares refusals[r] for each reason r, counted as
// weir_auth_failures_total{plugin=plugin,route=route,reason=Label}.
func NewFailures[R ~uint8](plugin, route string, refusals []Refusal) *Failures[R] {
	fs := &Failures[R]{reasons: make([]failure, len(refusals))}
	for i, rf := range refusals {
		fs.reasons[i] = failure{
			counter: metrics.GetOrCreateCounter(`weir_auth_failures_total{plugin="` + plugin + `",route=` +
				promlabel.Quote(route) + `,reason="` + rf.Label + `"}`),
			status: rf.Status,
			msg:    rf.Msg,
		}
		if rf.Challenge != "" {
			fs.reasons[i].challenge = []byte(rf.Challenge)
		}
	}
	return fs
}

// Fail counts reason r and answers the request with its status, JSON
// error and challenge.
func (fs *Failures[R]) Fail(c *sdk.Ctx, r R) sdk.Status {
	f := &fs.reasons[r]
	f.counter.Inc()
	st := c.Fail(f.status, f.msg)
	if ch := f.challenge; ch != nil {
		// Deferred so it survives whatever the proxy does with the final
		// response, and set now for a caller that writes c.Response() as is.
		c.SetResponseHeader("WWW-Authenticate", ch)
		c.Response().Header.SetBytesV("WWW-Authenticate", ch)
	}
	return st
}

// Challenge is the WWW-Authenticate value for a request that sent no
// credentials: RFC 6750 §3.1 gives it no error code.
func Challenge(realm string) string { return `Bearer realm="` + realm + `"` }

// ErrorChallenge is the WWW-Authenticate value naming an RFC 6750 §3.1
// error code ("invalid_token", "insufficient_scope") and its description.
// desc must not contain '"' or '\'.
func ErrorChallenge(realm, code, desc string) string {
	return Challenge(realm) + `, error="` + code + `", error_description="` + desc + `"`
}

// InsufficientScopeChallenge is the challenge of a 403 for a token without
// the required scopes, which RFC 6750 §3 lets the server name in "scope".
func InsufficientScopeChallenge(realm, desc string, required []string) string {
	return ErrorChallenge(realm, "insufficient_scope", desc) + `, scope="` + strings.Join(required, " ") + `"`
}

// ValidRealm checks a configured realm: it goes into a quoted-string of
// the challenge (RFC 9110 §5.6.4) as is, so it must be printable ASCII
// without quotes or backslashes.
func ValidRealm(realm string) error {
	for i := 0; i < len(realm); i++ {
		if ch := realm[i]; ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f {
			return errors.New("realm must be printable ASCII without quotes or backslashes")
		}
	}
	return nil
}
