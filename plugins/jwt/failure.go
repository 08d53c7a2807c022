package jwt

import (
	"github.com/weirgw/weir/plugins/internal/bearer"
)

// reason is why a request was refused; each has a metric label, a status,
// a message for the JSON error and an RFC 6750 §3.1 error code.
type reason uint8

const (
	reasonMissing reason = iota
	reasonTooLarge
	reasonMalformed
	reasonBadAlg
	reasonForbiddenHeader
	reasonUnknownKey
	reasonBadSignature
	reasonExpired
	reasonNotYetValid
	reasonMissingClaim
	reasonBadIssuer
	reasonBadAudience
	reasonInvalidClaims
	reasonJWKSUnavailable
	numReasons
)

var reasonInfo = [numReasons]struct {
	label, msg string
	status     int
}{
	reasonMissing:         {"missing", "missing bearer token", 401},
	reasonTooLarge:        {"too_large", "token too large", 401},
	reasonMalformed:       {"malformed", "malformed token", 401},
	reasonBadAlg:          {"bad_alg", "token algorithm not accepted", 401},
	reasonForbiddenHeader: {"forbidden_header", "token header must not carry keys (jwk, jku, x5u, x5c) or crit", 401},
	reasonUnknownKey:      {"unknown_key", "no key to verify the token", 401},
	reasonBadSignature:    {"bad_signature", "invalid token signature", 401},
	reasonExpired:         {"expired", "token expired", 401},
	reasonNotYetValid:     {"not_yet_valid", "token not yet valid", 401},
	reasonMissingClaim:    {"missing_claim", "token lacks a required claim", 401},
	reasonBadIssuer:       {"bad_issuer", "token issuer not accepted", 401},
	reasonBadAudience:     {"bad_audience", "token audience not accepted", 401},
	reasonInvalidClaims:   {"invalid_claims", "invalid token claims", 401},
	reasonJWKSUnavailable: {"jwks_unavailable", "token keys unavailable, retry later", 503},
}

// newFailures prepares the refusals of an instance: a counter and a
// WWW-Authenticate value per reason.
func newFailures(route, realm string) *bearer.Failures[reason] {
	refusals := make([]bearer.Refusal, numReasons)
	for r := reason(0); r < numReasons; r++ {
		info := reasonInfo[r]
		refusals[r] = bearer.Refusal{Label: info.label, Status: info.status, Msg: info.msg}
		switch {
		case info.status != 401:
			// A 503 is the gateway's fault, not the token's: no challenge.
		case r == reasonMissing:
			refusals[r].Challenge = bearer.Challenge(realm)
		default:
			refusals[r].Challenge = bearer.ErrorChallenge(realm, "invalid_token", info.msg)
		}
	}
	return bearer.NewFailures[reason]("jwt", route, refusals)
}
