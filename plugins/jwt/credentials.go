package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"strings"
	"sync"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/weirgw/weir/sdk"
)

// credentialConfig is one entry of a consumer's `credentials.jwt` list:
//
//	jwt: [{issuer: "alice-app", algorithm: HS256, secret: "..."}]
//	jwt: [{issuer: "billing", algorithm: RS256, public_key: "-----BEGIN PUBLIC KEY-----..."}]
type credentialConfig struct {
	// Issuer is the value the token's key claim (key_claim_name, default
	// iss) must have for this credential's key to be used.
	Issuer    string `json:"issuer"`
	Algorithm string `json:"algorithm"`
	Secret    string `json:"secret"`
	PublicKey string `json:"public_key"`
}

// credential is a decoded consumer credential: exactly one algorithm and a
// key of the matching type, so an RSA public key can never be handed to the
// HMAC verifier (the RS/HS key-confusion attack).
type credential struct {
	consumer *sdk.Consumer
	place    int // in the consumer's jwt list, for errors
	issuer   string
	alg      string
	key      any
	// macs holds hashes keyed with an HMAC credential's secret, so a
	// verification neither keys a new hash nor allocates.
	macs *sync.Pool
}

// minHMACSecret is the shortest secret per algorithm: RFC 7518 §3.2 says
// "a key of the same size as the hash output ... or larger MUST be used".
var minHMACSecret = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// buildCredential decodes one credential. Whether an instance takes its
// algorithm is the instance's check (credIndex.checkAlgorithms): the
// index serves every instance.
func buildCredential(cons *sdk.Consumer, cc *credentialConfig) (*credential, error) {
	if cc.Issuer == "" {
		return nil, fmt.Errorf("issuer is required (the value of the token's key claim)")
	}
	if (cc.Secret == "") == (cc.PublicKey == "") {
		return nil, fmt.Errorf("set exactly one of secret (HS*) or public_key (RS*, PS256, ES*, EdDSA)")
	}
	alg := cc.Algorithm
	if alg == "" {
		alg = "HS256"
		if cc.PublicKey != "" {
			alg = "RS256"
		}
	}
	if !isSupportedAlg(alg) {
		return nil, fmt.Errorf("algorithm %q is not supported; use %s", alg, strings.Join(supportedAlgs[:], ", "))
	}
	cred := &credential{consumer: cons, issuer: cc.Issuer, alg: alg}
	if isHMAC(alg) {
		if cc.Secret == "" {
			return nil, fmt.Errorf("algorithm %s needs secret, not public_key", alg)
		}
		if n := minHMACSecret[alg]; len(cc.Secret) < n {
			return nil, fmt.Errorf("secret must be at least %d bytes for %s (RFC 7518 §3.2)", n, alg)
		}
		cred.key = []byte(cc.Secret)
		cred.macs = hmacPool(alg, cred.key.([]byte))
		return cred, nil
	}
	if cc.PublicKey == "" {
		return nil, fmt.Errorf("algorithm %s needs public_key (PEM), not secret", alg)
	}
	key, err := parsePublicKey(alg, []byte(cc.PublicKey))
	if err != nil {
		return nil, err
	}
	cred.key = key
	return cred, nil
}

// parsePublicKey reads a PEM public key (or certificate) of the type alg
// needs and refuses weak or mismatched keys.
func parsePublicKey(alg string, pem []byte) (any, error) {
	var key any
	var err error
	switch alg[:2] {
	case "RS", "PS":
		key, err = gojwt.ParseRSAPublicKeyFromPEM(pem)
	case "ES":
		key, err = gojwt.ParseECPublicKeyFromPEM(pem)
	case "Ed":
		key, err = gojwt.ParseEdPublicKeyFromPEM(pem)
	}
	if err != nil {
		return nil, fmt.Errorf("public_key is not a PEM %s public key: %v", keyKind(alg), err)
	}
	if !keyFits(alg, key) {
		return nil, fmt.Errorf("public_key does not fit %s: %s", alg, keyRequirement(alg))
	}
	return key, nil
}

func keyKind(alg string) string {
	switch alg[:2] {
	case "RS", "PS":
		return "RSA"
	case "ES":
		return "EC"
	default:
		return "Ed25519"
	}
}

func keyRequirement(alg string) string {
	switch alg {
	case "ES256":
		return "an EC key on P-256"
	case "ES384":
		return "an EC key on P-384"
	case "EdDSA":
		return "an Ed25519 key"
	}
	return "an RSA key of at least 2048 bits (RFC 7518 §3.3)"
}

// keyFits reports whether key is of the type and strength alg verifies
// with. It is the single place where algorithm families meet key types:
// credentials are checked with it once, JWKS keys on every lookup.
func keyFits(alg string, key any) bool {
	switch alg {
	case "HS256", "HS384", "HS512":
		_, ok := key.([]byte)
		return ok
	case "RS256", "RS384", "RS512", "PS256":
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N != nil && k.N.BitLen() >= 2048
	case "ES256":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	case "ES384":
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P384()
	case "EdDSA":
		k, ok := key.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize
	}
	return false
}
