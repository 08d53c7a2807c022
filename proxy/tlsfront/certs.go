package tlsfront

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// entry is one loaded certificate pair.
type entry struct {
	cert  *tls.Certificate
	leaf  *x509.Certificate
	ecdsa bool
	name  string // metric label: the first DNS name, else the cert file
	file  string // the certificate file, for logs
	// stapled is cert with a fresh OCSP staple, once there is one.
	stapled atomic.Pointer[tls.Certificate]
	ocsp    ocspState
}

// certSet is an immutable set of loaded pairs with its SNI indexes.
type certSet struct {
	all      []*entry            // in config order; all[0] is the default
	exact    map[string][]*entry // lower-case DNS name → entries, in config order
	wildcard map[string][]*entry // "example.com" for "*.example.com"
	sum      string              // the files' content, to tell a change
}

// loadPair reads and parses one certificate/key pair. Its error names the
// files and what is wrong with them.
func loadPair(certFile, keyFile string) (*entry, []byte, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading certificate file %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading key file %s: %w", keyFile, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("loading certificate %s with key %s: %w", certFile, keyFile, err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("parsing certificate %s: %w", certFile, err)
		}
		c.Leaf = leaf
	}
	e := &entry{cert: &c, leaf: leaf, file: certFile, name: certFile}
	_, e.ecdsa = leaf.PublicKey.(*ecdsa.PublicKey)
	if len(leaf.DNSNames) > 0 {
		e.name = leaf.DNSNames[0]
	}
	sum := append(append(append([]byte(nil), certPEM...), 0), keyPEM...)
	return e, sum, nil
}

// loadSet loads every pair; any broken pair fails the whole set, so a
// half-renewed directory never serves.
func loadSet(pairs [][2]string) (*certSet, error) {
	s := &certSet{exact: map[string][]*entry{}, wildcard: map[string][]*entry{}}
	var sum strings.Builder
	for _, p := range pairs {
		e, b, err := loadPair(p[0], p[1])
		if err != nil {
			return nil, err
		}
		sum.Write(b)
		s.all = append(s.all, e)
		for _, n := range e.leaf.DNSNames {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				s.wildcard[rest] = append(s.wildcard[rest], e)
			} else {
				s.exact[n] = append(s.exact[n], e)
			}
		}
	}
	s.sum = sum.String()
	return s, nil
}

// covers reports whether a pair names server name sni, exactly or by a
// wildcard.
func (s *certSet) covers(sni string) bool {
	name := strings.ToLower(strings.TrimSuffix(sni, "."))
	if name == "" {
		return false
	}
	if s.exact[name] != nil {
		return true
	}
	i := strings.IndexByte(name, '.')
	return i > 0 && s.wildcard[name[i+1:]] != nil
}

// pick chooses the certificate for a ClientHello: the pairs whose names
// match the SNI exactly, else those whose wildcard covers it (one label),
// and among them the first the client can use, ECDSA before RSA (smaller,
// faster handshakes). Without SNI or without a match it is the first pair
// in config order that the client can use: the first is the default.
func (s *certSet) pick(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	var cands []*entry
	if name != "" {
		cands = s.exact[name]
		if cands == nil {
			if i := strings.IndexByte(name, '.'); i > 0 {
				cands = s.wildcard[name[i+1:]]
			}
		}
	}
	if cands == nil {
		for _, e := range s.all {
			if hello.SupportsCertificate(e.cert) == nil {
				return e.current()
			}
		}
		return s.all[0].current()
	}
	var first *tls.Certificate
	for _, e := range cands {
		if hello.SupportsCertificate(e.cert) != nil {
			continue
		}
		if e.ecdsa {
			return e.current()
		}
		if first == nil {
			first = e.current()
		}
	}
	if first != nil {
		return first
	}
	// None fits the client: offer the first match and let the handshake
	// fail with the client's own reason.
	return cands[0].current()
}

// expiry holds weir_tls_certificate_expiry_seconds: one gauge per name,
// reading the NotAfter of the pair last loaded under that name.
var expiry struct {
	mu       sync.Mutex
	notAfter map[string]time.Time
}

func publishExpiry(s *certSet) {
	for _, e := range s.all {
		setExpiry(e.name, e.leaf.NotAfter)
	}
}

// setExpiry sets the gauge of name, the certificate's first DNS name (or
// its file), to the seconds until notAfter.
func setExpiry(name string, notAfter time.Time) {
	expiry.mu.Lock()
	defer expiry.mu.Unlock()
	if expiry.notAfter == nil {
		expiry.notAfter = map[string]time.Time{}
	}
	if _, ok := expiry.notAfter[name]; !ok {
		metrics.GetOrCreateGauge(fmt.Sprintf(`weir_tls_certificate_expiry_seconds{name=%q}`, name), func() float64 {
			expiry.mu.Lock()
			defer expiry.mu.Unlock()
			return time.Until(expiry.notAfter[name]).Seconds()
		})
	}
	expiry.notAfter[name] = notAfter
}
