package jwt

import (
	"errors"

	gojwt "github.com/golang-jwt/jwt/v5"

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

// errForbiddenHeader and errAlgMismatch come from the key lookup.
var (
	errForbiddenHeader = errors.New("token header carries a key or crit")
	errAlgMismatch     = errors.New("token algorithm does not match the key")
	errBadIssuer       = errors.New("token issuer not accepted")
)

// classify maps a golang-jwt error to a reason. tok may be nil.
func (f *filter) classify(tok *gojwt.Token, err error) reason {
	switch {
	case errors.Is(err, errJWKSUnavailable):
		return reasonJWKSUnavailable
	case errors.Is(err, errForbiddenHeader):
		return reasonForbiddenHeader
	case errors.Is(err, errAlgMismatch):
		return reasonBadAlg
	case errors.Is(err, errBadIssuer):
		return reasonBadIssuer
	case errors.Is(err, errUnknownKey):
		return reasonUnknownKey
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return reasonMalformed
	case errors.Is(err, gojwt.ErrTokenUnverifiable):
		// An alg golang-jwt does not know ("None", "nOnE", "XS256").
		return reasonBadAlg
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && !f.algAllowed(tok.Method.Alg()) {
			return reasonBadAlg // WithValidMethods refused it
		}
		return reasonBadSignature
	case errors.Is(err, gojwt.ErrTokenExpired):
		return reasonExpired
	case errors.Is(err, gojwt.ErrTokenNotValidYet), errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return reasonNotYetValid
	case errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		return reasonMissingClaim
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return reasonBadIssuer
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return reasonBadAudience
	}
	return reasonInvalidClaims
}
