package mtlsauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/weirgw/weir/plugins/internal/confval"
	"github.com/weirgw/weir/sdk"
)

// Config is the plugin's `config` object.
type Config struct {
	// Match lists the parts of the certificate tried, in order, to find the
	// consumer: "subject" (the subject common name), "san" (each DNS, then
	// URI subject alternative name) and "fingerprint" (SHA-256 of the
	// DER certificate). Default [subject, san, fingerprint].
	Match []string `json:"match"`
	// Required answers 401 to a request without a client certificate,
	// which lets one route demand a certificate on a listener whose
	// client_auth is optional. Default true; false lets such requests
	// continue unidentified.
	Required *bool `json:"required"`
}

// Credential is one entry of a consumer's `credentials.mtls_auth` list.
// Every field that is set identifies the consumer on its own.
type Credential struct {
	// Subject is the certificate's subject common name, e.g. "alice".
	Subject string `json:"subject"`
	// SAN is a DNS name ("svc.example.com") or a URI
	// ("spiffe://example.org/ns/prod/sa/billing") among the certificate's
	// subject alternative names.
	SAN string `json:"san"`
	// Fingerprint is the SHA-256 of the DER certificate in hex, any case,
	// colons allowed (as `openssl x509 -fingerprint -sha256` prints it).
	Fingerprint string `json:"fingerprint"`
	// ID names the credential in logs and for limits keyed on credentials;
	// default "CONSUMER#INDEX".
	ID string `json:"id"`
}

// The parts of a certificate that can identify a consumer.
const (
	bySubject = iota
	bySAN
	byFingerprint
)

var matchNames = []string{bySubject: "subject", bySAN: "san", byFingerprint: "fingerprint"}

// matchOrder resolves cfg.Match.
func matchOrder(list []string) ([]int, error) {
	if list == nil {
		return []int{bySubject, bySAN, byFingerprint}, nil
	}
	if len(list) == 0 {
		return nil, errors.New("match: empty; list at least one of subject, san, fingerprint")
	}
	var errs []error
	var order []int
	seen := map[int]int{}
	for i, m := range list {
		k := -1
		for j, n := range matchNames {
			if m == n {
				k = j
			}
		}
		switch j, dup := seen[k]; {
		case k < 0:
			errs = append(errs, fmt.Errorf("match[%d]: %q is not one of subject, san, fingerprint", i, m))
		case dup:
			errs = append(errs, fmt.Errorf("match[%d]: %q is also match[%d]; keep one", i, m, j))
		default:
			seen[k] = i
			order = append(order, k)
		}
	}
	return order, errors.Join(errs...)
}

// entry is the consumer one credential identifies.
type entry struct {
	consumer *sdk.Consumer
	id       string
}

// uriKey is a URI SAN as a comparable map key. x509 parses URI SANs with
// url.Parse, so parsing a configured URI the same way yields field-equal
// values; the user info, a pointer in url.URL, is carried as strings so
// that a lookup needs no allocation.
type uriKey struct {
	u          url.URL
	user, pass string
	hasPass    bool
}

func keyOf(u *url.URL) uriKey {
	k := uriKey{u: *u}
	k.u.User = nil
	if u.User != nil {
		k.user = u.User.Username()
		k.pass, k.hasPass = u.User.Password()
	}
	return k
}

// index holds every consumer's mtls_auth credentials, one map per part of
// the certificate they match.
type index struct {
	subjects     map[string]*entry
	dnsNames     map[string]*entry // lower case
	uris         map[uriKey]*entry
	fingerprints map[[sha256.Size]byte]*entry
}

// indexCredentials decodes every consumer's mtls_auth credentials. Every
// mtls_auth instance of a snapshot sees the same consumers, so the last
// index is cached by the *sdk.Consumers it was built from (as key_auth
// does): many routes cost one build per load. Indexes are read-only once
// built, hence safe to share.
func indexCredentials(cs *sdk.Consumers) (*index, error) {
	lastIndex.Lock()
	defer lastIndex.Unlock()
	if lastIndex.cs != cs || cs == nil {
		lastIndex.idx, lastIndex.err = buildIndex(cs)
		lastIndex.cs = cs
	}
	return lastIndex.idx, lastIndex.err
}

var lastIndex struct {
	sync.Mutex
	cs  *sdk.Consumers
	idx *index
	err error
}

// where names a credential for error messages.
type where struct {
	consumer string
	index    int
}

func buildIndex(cs *sdk.Consumers) (*index, error) {
	idx := &index{
		subjects:     map[string]*entry{},
		dnsNames:     map[string]*entry{},
		uris:         map[uriKey]*entry{},
		fingerprints: map[[sha256.Size]byte]*entry{},
	}
	// Where each identifier came from, to name both ends of a duplicate.
	from := map[string]where{}
	ids := map[string]string{}
	// Every bad credential is reported, not just the first.
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, cons := range cs.All() {
		for i, raw := range cons.Credentials["mtls_auth"] {
			at := fmt.Sprintf("consumer %q: mtls_auth[%d]", cons.Name, i)
			if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
				bad("%s: a credential is an object like {subject: \"...\"} or {fingerprint: \"...\"}", at)
				continue
			}
			var cred Credential
			if err := sdk.DecodeConfig(raw, &cred); err != nil {
				errs = append(errs, confval.Prefix(at+": ", err))
				continue
			}
			if cred.Subject == "" && cred.SAN == "" && cred.Fingerprint == "" {
				bad("%s: set subject, san or fingerprint", at)
				continue
			}
			id := cred.ID
			if id == "" {
				id = fmt.Sprintf("%s#%d", cons.Name, i)
			}
			if other, dup := ids[id]; dup {
				bad("%s: id %q is already used by consumer %q; ids must be unique", at, id, other)
				continue
			}
			ids[id] = cons.Name
			e := &entry{consumer: cons, id: id}
			// claim records that identifier what (named by field: value)
			// belongs to e, or reports who already has it.
			claim := func(field, value string) bool {
				k := field + "\x00" + value
				if prev, dup := from[k]; dup {
					if prev.consumer == cons.Name {
						bad("%s repeats the %s of mtls_auth[%d]; remove one", at, field, prev.index)
					} else {
						bad("consumers %q and %q share the client certificate %s %q; each must identify one consumer", prev.consumer, cons.Name, field, value)
					}
					return false
				}
				from[k] = where{cons.Name, i}
				return true
			}
			if s := cred.Subject; s != "" {
				if len(s) > 3 && strings.EqualFold(s[:3], "CN=") {
					bad("%s: subject %q: give the common name alone, e.g. %q", at, s, s[3:])
				} else if claim("subject", s) {
					idx.subjects[s] = e
				}
			}
			if s := cred.SAN; s != "" {
				if strings.Contains(s, ":") {
					u, err := url.Parse(s)
					switch {
					case err != nil || u.Scheme == "":
						bad("%s: san %q is neither a DNS name nor an absolute URI", at, s)
					case claim("san", s):
						idx.uris[keyOf(u)] = e
					}
				} else {
					d := strings.ToLower(s)
					if d != strings.TrimSpace(d) || strings.ContainsAny(d, " /") {
						bad("%s: san %q is neither a DNS name nor an absolute URI", at, s)
					} else if claim("san", d) {
						idx.dnsNames[d] = e
					}
				}
			}
			if s := cred.Fingerprint; s != "" {
				fp, ok := parseFingerprint(s)
				if !ok {
					bad("%s: fingerprint %q is not a SHA-256 fingerprint: give 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)", at, s)
				} else if claim("fingerprint", hex.EncodeToString(fp[:])) {
					idx.fingerprints[fp] = e
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return idx, nil
}

// parseFingerprint reads a SHA-256 fingerprint in hex, either case, with or
// without colons between the bytes.
func parseFingerprint(s string) (fp [sha256.Size]byte, ok bool) {
	h := s
	if strings.Contains(s, ":") {
		// Colons go between every two digits or nowhere.
		if len(s) != 3*sha256.Size-1 {
			return fp, false
		}
		for i := 2; i < len(s); i += 3 {
			if s[i] != ':' {
				return fp, false
			}
		}
		h = strings.ReplaceAll(s, ":", "")
	}
	if len(h) != 2*sha256.Size {
		return fp, false
	}
	if _, err := hex.Decode(fp[:], []byte(h)); err != nil {
		return fp, false
	}
	return fp, true
}
