package mtlsauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"net/url"
	"strings"

	"github.com/weirgw/weir/internal/pmap"
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
//
// It lives with the consumers (sdk.IndexSlot), not in a filter: every
// mtls_auth instance of a snapshot reads the same one, and a change of
// one consumer through the admin API updates it (With) in time that does
// not grow with the number of consumers, while the running snapshot
// keeps reading the old one. Every map is persistent (internal/pmap).
type index struct {
	subjects     *pmap.Map[string, *entry]
	dnsNames     *pmap.Map[string, *entry] // lower case
	uris         *pmap.Map[uriKey, *entry]
	fingerprints *pmap.Map[[sha256.Size]byte, *entry]
	// claims holds who holds each identifier ("field\x00value"), to
	// name both ends of a duplicate; ids every credential id.
	claims *pmap.Map[string, where]
	ids    *pmap.Map[string, string]
}

var seed = maphash.MakeSeed()

func hashOf[K comparable](k K) uint64 { return maphash.Comparable(seed, k) }

var slot = sdk.NewIndexSlot(func(cs *sdk.Consumers) (sdk.ConsumerIndex, error) { return buildIndex(cs) })

// where names a credential for error messages.
type where struct {
	consumer string
	index    int
}

func buildIndex(cs *sdk.Consumers) (*index, error) {
	x := &index{
		subjects:     pmap.New[string, *entry](hashOf[string], 0),
		dnsNames:     pmap.New[string, *entry](hashOf[string], 0),
		uris:         pmap.New[uriKey, *entry](hashOf[uriKey], 0),
		fingerprints: pmap.New[[sha256.Size]byte, *entry](hashOf[[sha256.Size]byte], 0),
		claims:       pmap.New[string, where](hashOf[string], 0),
		ids:          pmap.New[string, string](hashOf[string], 0),
	}
	b := indexBuild{x: x}
	for _, cons := range cs.All() {
		b.add(cons)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	return x, nil
}

// With is the index of the consumers in which old is replaced by c.
func (x *index) With(old, c *sdk.Consumer, _ *sdk.Consumers) (sdk.ConsumerIndex, error) {
	y := *x
	if old != nil {
		for i, raw := range old.Credentials.Of("mtls_auth") {
			var cred Credential
			if err := sdk.DecodeConfig(raw, &cred); err != nil {
				continue // never indexed
			}
			id := cred.ID
			if id == "" {
				id = fmt.Sprintf("%s#%d", old.Name, i)
			}
			if owner, ok := y.ids.Get(id); ok && owner == old.Name {
				y.ids = y.ids.Without(id)
			}
			for _, it := range identifiers(&cred, nil) {
				if w, ok := y.claims.Get(it.claim); ok && w.consumer == old.Name {
					y.claims = y.claims.Without(it.claim)
					y.drop(it)
				}
			}
		}
	}
	if c != nil {
		b := indexBuild{x: &y, persistent: true}
		b.add(c)
		if len(b.errs) > 0 {
			return nil, errors.Join(b.errs...)
		}
	}
	return &y, nil
}

// Parts of a certificate an identifier matches.
const (
	idSubject = iota
	idDNS
	idURI
	idFingerprint
)

// identifier is one thing a credential matches a certificate by.
type identifier struct {
	claim string // "field\x00value", for duplicates
	kind  int
	str   string // idSubject, idDNS
	uri   uriKey
	fp    [sha256.Size]byte
}

// identifiers lists what cred matches certificates by; bad (when not nil)
// reports each malformed one, which is left out.
func identifiers(cred *Credential, bad func(format string, args ...any)) []identifier {
	if bad == nil {
		bad = func(string, ...any) {}
	}
	var out []identifier
	add := func(field, value string, it identifier) {
		it.claim = field + "\x00" + value
		out = append(out, it)
	}
	if s := cred.Subject; s != "" {
		if len(s) > 3 && strings.EqualFold(s[:3], "CN=") {
			bad("subject %q: give the common name alone, e.g. %q", s, s[3:])
		} else {
			add("subject", s, identifier{kind: idSubject, str: s})
		}
	}
	if s := cred.SAN; s != "" {
		if strings.Contains(s, ":") {
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" {
				bad("san %q is neither a DNS name nor an absolute URI", s)
			} else {
				add("san", s, identifier{kind: idURI, uri: keyOf(u)})
			}
		} else {
			d := strings.ToLower(s)
			if d != strings.TrimSpace(d) || strings.ContainsAny(d, " /") {
				bad("san %q is neither a DNS name nor an absolute URI", s)
			} else {
				add("san", d, identifier{kind: idDNS, str: d})
			}
		}
	}
	if s := cred.Fingerprint; s != "" {
		fp, ok := parseFingerprint(s)
		if !ok {
			bad("fingerprint %q is not a SHA-256 fingerprint: give 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)", s)
		} else {
			add("fingerprint", hex.EncodeToString(fp[:]), identifier{kind: idFingerprint, fp: fp})
		}
	}
	return out
}

// drop removes it from the map of its kind.
func (x *index) drop(it identifier) {
	switch it.kind {
	case idSubject:
		x.subjects = x.subjects.Without(it.str)
	case idDNS:
		x.dnsNames = x.dnsNames.Without(it.str)
	case idURI:
		x.uris = x.uris.Without(it.uri)
	case idFingerprint:
		x.fingerprints = x.fingerprints.Without(it.fp)
	}
}

// indexBuild adds consumers' credentials to an index, collecting every
// error: every bad credential is reported, not just the first.
type indexBuild struct {
	x          *index
	persistent bool // With: x's maps are shared with the running index
	errs       []error
}

// set puts k in m: in place while the index is first built, as a new
// version when it is shared.
func set[K comparable, V any](b *indexBuild, m **pmap.Map[K, V], k K, v V) {
	if b.persistent {
		*m = (*m).With(k, v)
	} else {
		(*m).Set(k, v)
	}
}

func (b *indexBuild) add(cons *sdk.Consumer) {
	x := b.x
	for i, raw := range cons.Credentials.Of("mtls_auth") {
		at := fmt.Sprintf("consumer %q: mtls_auth[%d]", cons.Name, i)
		bad := func(format string, args ...any) {
			b.errs = append(b.errs, fmt.Errorf("%s: "+format, append([]any{at}, args...)...))
		}
		if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
			bad("a credential is an object like {subject: \"...\"} or {fingerprint: \"...\"}")
			continue
		}
		var cred Credential
		if err := sdk.DecodeConfig(raw, &cred); err != nil {
			b.errs = append(b.errs, confval.Prefix(at+": ", err))
			continue
		}
		if cred.Subject == "" && cred.SAN == "" && cred.Fingerprint == "" {
			bad("set subject, san or fingerprint")
			continue
		}
		id := cred.ID
		if id == "" {
			id = fmt.Sprintf("%s#%d", cons.Name, i)
		}
		if other, dup := x.ids.Get(id); dup {
			bad("id %q is already used by consumer %q; ids must be unique", id, other)
			continue
		}
		set(b, &x.ids, id, cons.Name)
		e := &entry{consumer: cons, id: id}
		for _, it := range identifiers(&cred, bad) {
			if prev, dup := x.claims.Get(it.claim); dup {
				field, value, _ := strings.Cut(it.claim, "\x00")
				if prev.consumer == cons.Name {
					b.errs = append(b.errs, fmt.Errorf("%s repeats the %s of mtls_auth[%d]; remove one", at, field, prev.index))
				} else {
					b.errs = append(b.errs, fmt.Errorf("consumers %q and %q share the client certificate %s %q; each must identify one consumer", prev.consumer, cons.Name, field, value))
				}
				continue
			}
			set(b, &x.claims, it.claim, where{cons.Name, i})
			switch it.kind {
			case idSubject:
				set(b, &x.subjects, it.str, e)
			case idDNS:
				set(b, &x.dnsNames, it.str, e)
			case idURI:
				set(b, &x.uris, it.uri, e)
			case idFingerprint:
				set(b, &x.fingerprints, it.fp, e)
			}
		}
	}
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
