package oauth2introspection

import (
	"github.com/weirgw/weir/plugins/internal/bearer"
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

// newFailures prepares the refusals of an instance: per reason a status,
// a counter and a WWW-Authenticate value.
func newFailures(route, realm string, onError int, required []string) *bearer.Failures[reason] {
	refusals := make([]bearer.Refusal, numReasons)
	for i := reason(0); i < numReasons; i++ {
		info := reasonInfo[i]
		rf := bearer.Refusal{Label: info.label, Status: 401, Msg: info.msg}
		switch i {
		case reasonMissing:
			rf.Challenge = bearer.Challenge(realm)
		case reasonScope:
			// RFC 6750 §3.1: insufficient_scope is a 403 naming the scope.
			rf.Status = 403
			rf.Challenge = bearer.InsufficientScopeChallenge(realm, info.msg, required)
		case reasonError:
			rf.Status = onError
			if onError == 401 {
				rf.Challenge = bearer.ErrorChallenge(realm, "invalid_token", info.msg)
			}
		default:
			rf.Challenge = bearer.ErrorChallenge(realm, "invalid_token", info.msg)
		}
		refusals[i] = rf
	}
	return bearer.NewFailures[reason]("oauth2_introspection", route, refusals)
}
