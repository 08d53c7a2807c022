// Package mtlsauth is the mtls_auth plugin: it identifies the consumer of a
// request by the verified client certificate of its TLS connection (see
// README.md, "TLS listeners", client_auth): by the subject common name, a
// DNS or URI subject alternative name, or the certificate's SHA-256
// fingerprint. A request without a certificate, or with one no consumer
// claims, is answered 401.
//
// Credentials come from the consumers' `credentials.mtls_auth` lists and
// are indexed when the config loads; a request costs a few map lookups
// (and one SHA-256 of the certificate when fingerprints are tried),
// without allocating beyond what reading the connection's TLS state costs.
package mtlsauth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/sdk"
)

func init() { sdk.Register(sdk.Factory{Name: "mtls_auth", New: New}) }

// challenge is the WWW-Authenticate value of every 401 (RFC 9110 §11.6.1
// requires one on a 401). No scheme is registered for TLS client
// certificates; this one names what the client has to bring.
var challenge = []byte(`Certificate realm="weir"`)

type filter struct {
	order    []int
	required bool
	idx      *index

	missing *metrics.Counter
	invalid *metrics.Counter
}

// New validates the config and indexes the consumers' credentials.
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	// The settings and the consumers' credentials are each checked and
	// the errors joined: one run shows them all.
	order, errM := matchOrder(cfg.Match)
	idx, errI := sdk.IndexOf[*index](b.Consumers, slot)
	if err := errors.Join(errM, errI); err != nil {
		return nil, err
	}
	f := &filter{order: order, required: cfg.Required == nil || *cfg.Required, idx: idx}
	route := b.Route
	if route == "" {
		route = "_global"
	}
	name := func(reason string) string {
		return fmt.Sprintf(`weir_auth_failures_total{plugin="mtls_auth",route=%q,reason=%q}`, route, reason)
	}
	f.missing = metrics.GetOrCreateCounter(name("missing"))
	f.invalid = metrics.GetOrCreateCounter(name("invalid"))
	return f, nil
}

// OnRequest identifies the consumer or answers 401.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	cert := c.ClientCertificate()
	if cert == nil {
		if !f.required {
			return sdk.Continue, nil
		}
		f.missing.Inc()
		c.SetResponseHeader("WWW-Authenticate", challenge)
		return c.Fail(401, "missing client certificate"), nil
	}
	e := f.lookup(f.index(c), cert)
	if e == nil {
		f.invalid.Inc()
		c.SetResponseHeader("WWW-Authenticate", challenge)
		return c.Fail(401, "unknown client certificate"), nil
	}
	c.SetConsumer(e.consumer, e.id)
	return sdk.Continue, nil
}

// lookup returns the credential the certificate matches first, trying the
// parts of the certificate in the configured order, or nil. It does not
// allocate.
func (f *filter) lookup(x *index, cert *x509.Certificate) *entry {
	for _, by := range f.order {
		switch by {
		case bySubject:
			if cn := cert.Subject.CommonName; cn != "" {
				if e, _ := x.subjects.Get(cn); e != nil {
					return e
				}
			}
		case bySAN:
			for _, d := range cert.DNSNames {
				if e := x.dnsName(d); e != nil {
					return e
				}
			}
			if x.uris.Len() > 0 {
				for _, u := range cert.URIs {
					if e, _ := x.uris.Get(keyOf(u)); e != nil {
						return e
					}
				}
			}
		case byFingerprint:
			if x.fingerprints.Len() > 0 {
				if e, _ := x.fingerprints.Get(sha256.Sum256(cert.Raw)); e != nil {
					return e
				}
			}
		}
	}
	return nil
}

// dnsName looks up a DNS SAN case-insensitively (DNS names are; the index
// holds them in lower case), lowering it in a stack buffer.
func (x *index) dnsName(d string) *entry {
	if x.dnsNames.Len() == 0 {
		return nil
	}

	if len(d) > 253 {
		return nil
	}
	lower := true
	for i := 0; i < len(d) && lower; i++ {
		lower = d[i] < 'A' || d[i] > 'Z'
	}
	if lower {
		e, _ := x.dnsNames.Get(d)
		return e
	}
	// A pooled buffer rather than one on the stack: the index's key
	// escapes (to its hash function), so a stack buffer would be moved
	// to the heap on every call. Get does not keep the key.
	buf := lowerBufs.Get().(*[253]byte)
	b := buf[:len(d)]
	for i := 0; i < len(d); i++ {
		ch := d[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[i] = ch
	}
	e, _ := x.dnsNames.Get(unsafe.String(unsafe.SliceData(b), len(b)))
	lowerBufs.Put(buf)
	return e
}

var lowerBufs = sync.Pool{New: func() any { return new([253]byte) }}

// index is the credential index of the request's consumers (kept current
// by admin API writes), or the one the filter was built with.
func (f *filter) index(c *sdk.Ctx) *index {
	if x, ok := c.Consumers.Indexed(slot).(*index); ok {
		return x
	}
	return f.idx
}
