package tlsfront

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/weirgw/weir/proxy/config"
)

// acmeState is a listener's automatic certificates: certmagic's config
// and certificate cache, which renews them in the background.
type acmeState struct {
	magic   *certmagic.Config
	cache   *certmagic.Cache
	domains map[string]bool // lower-case
}

// newACME builds certmagic for listener l. Certificates already in
// storage are loaded before it returns; missing ones are ordered in the
// background, because the CA's TLS-ALPN-01 validation connects to this
// very listener, which serves only after the start.
func newACME(l config.Listener, opts Options) (*acmeState, error) {
	a := l.TLS.ACME
	zl := zap.New(slogCore{log: opts.Log.With("listen", l.Address, "component", "acme")})
	var storage certmagic.Storage
	if opts.Redis != nil {
		storage = NewRedisStorage(opts.Redis)
	} else {
		dir := Resolve(opts.ConfigDir, a.Storage)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("making acme storage directory %s: %w", dir, err)
		}
		storage = &certmagic.FileStorage{Path: dir}
	}
	roots, err := acmeRoots(a, opts.ConfigDir)
	if err != nil {
		return nil, err
	}
	st := &acmeState{domains: map[string]bool{}}
	for _, d := range a.Domains {
		st.domains[strings.ToLower(d)] = true
	}
	st.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return st.magic, nil },
		RenewCheckInterval: a.RenewCheckInterval.D(),
		Logger:             zl,
	})
	st.magic = certmagic.New(st.cache, certmagic.Config{
		RenewalWindowRatio: a.RenewWindow,
		Storage:            storage,
		Logger:             zl,
		DefaultServerName:  strings.ToLower(a.Domains[0]),
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			if event == "cached_managed_cert" {
				// The event comes after the cache holds the certificate;
				// reading it back publishes its expiry under its name.
				if sans, ok := data["sans"].([]string); ok {
					for _, n := range sans {
						st.publish(n)
					}
				}
			}
			return nil
		},
	})
	host, port, _ := net.SplitHostPort(l.Address)
	p, _ := strconv.Atoi(port)
	st.magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(st.magic, certmagic.ACMEIssuer{
		CA:     a.Directory,
		Email:  a.Email,
		Agreed: true,
		// TLS-ALPN-01 is answered on this very listener: GetCertificate
		// hands acme-tls/1 handshakes to certmagic. Pointing its solver
		// at the listener's own address makes its attempt to bind a
		// challenge server find the port taken, which it reads as "we
		// serve it". HTTP-01 would need port 80, which Weir may not own.
		DisableHTTPChallenge: true,
		ListenHost:           host,
		AltTLSALPNPort:       p,
		TrustedRoots:         roots,
		Logger:               zl,
	})}
	if err := st.magic.ManageAsync(context.Background(), a.Domains); err != nil {
		st.cache.Stop()
		return nil, fmt.Errorf("managing acme certificates for %v from %s: %w", a.Domains, a.Directory, err)
	}
	return st, nil
}

// acmeRoots loads tls.acme.ca, the roots of the ACME server's HTTPS; nil
// (the system roots) without it.
func acmeRoots(a *config.ACME, dir string) (*x509.CertPool, error) {
	if a.CA == "" {
		return nil, nil
	}
	file := Resolve(dir, a.CA)
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading acme ca file %s: %w", file, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("acme ca file %s holds no PEM certificate", file)
	}
	return roots, nil
}

// publish sets the expiry gauge of name from the cached certificate.
func (st *acmeState) publish(name string) {
	var latest time.Time
	for _, c := range st.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && c.Leaf.NotAfter.After(latest) {
			latest = c.Leaf.NotAfter
		}
	}
	if !latest.IsZero() {
		setExpiry(name, latest)
	}
}

// serves reports whether server name sni is among the domains.
func (st *acmeState) serves(sni string) bool {
	return st.domains[strings.ToLower(strings.TrimSuffix(sni, "."))]
}

// slogCore writes certmagic's zap logs into Weir's slog logger, so they
// come out in one format with the rest. Debug lines are dropped.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func (c slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.InfoLevel }

func (c slogCore) With(f []zapcore.Field) zapcore.Core {
	return slogCore{log: c.log, fields: append(slices.Clip(c.fields), f...)}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	args := make([]any, 0, 2*len(enc.Fields))
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		args = append(args, k, enc.Fields[k])
	}
	lvl := slog.LevelInfo
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		lvl = slog.LevelWarn
	}
	c.log.Log(context.Background(), lvl, e.Message, args...)
	return nil
}

func (c slogCore) Sync() error { return nil }
