package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/redis/rueidis"

	"github.com/weirgw/weir/proxy/config"
)

// nextProtos is what ALPN offers on listener l: HTTP/2 first when the
// listener turns it on (http2: true), then HTTP/1.1.
func nextProtos(l config.Listener) []string {
	if l.HTTP2 {
		return []string{"h2", "http/1.1"}
	}
	return []string{"http/1.1"}
}

// Options configure a Front.
type Options struct {
	// ConfigDir resolves relative certificate paths (the config file's
	// directory).
	ConfigDir string
	Log       *slog.Logger
	// HandshakeTimeout bounds the first byte and the whole handshake of a
	// connection (server.read_timeout).
	HandshakeTimeout time.Duration
	// PlainHTTPAnswer is the complete HTTP/1.1 response written to a
	// client that speaks plain HTTP to the TLS port.
	PlainHTTPAnswer func() []byte
	// Tickets rotates the session ticket keys; nil leaves Go's own
	// per-process keys.
	Tickets *TicketKeys
	// Redis, when the cluster has one, holds the ACME account, keys,
	// certificates and locks instead of tls.acme.storage.
	Redis rueidis.Client
}

// Front is one TLS listener's state.
type Front struct {
	opts  Options
	addr  string
	pairs [][2]string // resolved cert, key paths
	cfg   *tls.Config
	certs atomic.Pointer[certSet]
	acme  *acmeState // nil without tls.acme
	// reloadMu serialises reloads (the file poller and SIGHUP).
	reloadMu sync.Mutex
}

// Resolve makes a config path absolute against the config's directory.
func Resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// New builds the TLS state of listener l (its tls section is set): it
// loads every certificate pair and the client CA, and fails when one
// does not load.
func New(l config.Listener, opts Options) (*Front, error) {
	t := l.TLS
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = config.DefaultReadTimeout
	}
	f := &Front{opts: opts, addr: l.Address}
	for _, p := range t.Certificates {
		f.pairs = append(f.pairs, [2]string{Resolve(opts.ConfigDir, p.Cert), Resolve(opts.ConfigDir, p.Key)})
	}
	set, err := loadSet(f.pairs)
	if err != nil {
		return nil, err
	}
	f.certs.Store(set)
	publishExpiry(set)
	cfg, err := baseConfig(l, opts.ConfigDir)
	if err != nil {
		return nil, err
	}
	if t.ACME != nil {
		if f.acme, err = newACME(l, opts); err != nil {
			return nil, err
		}
		// Go answers acme-tls/1 only to a client that offers it: the CA's
		// TLS-ALPN-01 validation.
		cfg.NextProtos = append(cfg.NextProtos, acmez.ACMETLS1Protocol)
	}
	cfg.GetCertificate = f.getCertificate
	f.cfg = cfg
	if opts.Tickets != nil {
		opts.Tickets.Register(cfg)
	}
	return f, nil
}

// getCertificate chooses the certificate of a handshake: a file's for
// the names the files cover, else certmagic's for a TLS-ALPN challenge
// and the ACME domains, else the files' default, else the first ACME
// domain's.
func (f *Front) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := f.certs.Load()
	if f.acme == nil {
		return set.pick(hello), nil
	}
	if slices.Contains(hello.SupportedProtos, acmez.ACMETLS1Protocol) ||
		!set.covers(hello.ServerName) && (f.acme.serves(hello.ServerName) || len(set.all) == 0) {
		return f.acme.magic.GetCertificate(hello)
	}
	return set.pick(hello), nil
}

// Stop ends the background work of the listener's ACME certificates.
func (f *Front) Stop() {
	if f.acme != nil {
		f.acme.cache.Stop()
	}
}

// baseConfig is the part of the tls.Config the listener's config fixes.
func baseConfig(l config.Listener, dir string) (*tls.Config, error) {
	t := l.TLS
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos(l),
		// X25519 first; the NIST curves for clients without it. Go adds
		// the post-quantum hybrid on its own when the client offers it.
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
	}
	if t.MinVersion == "1.3" {
		cfg.MinVersion = tls.VersionTLS13
	}
	ciphers := t.Ciphers
	if len(ciphers) == 0 {
		ciphers = config.DefaultTLSCiphers
	}
	for _, name := range ciphers {
		id, _, ok := config.TLSCipherSuite(name)
		if !ok {
			return nil, fmt.Errorf("tls cipher suite %q is not accepted", name)
		}
		cfg.CipherSuites = append(cfg.CipherSuites, id)
	}
	if ca := t.ClientAuth; ca != nil && ca.Mode != config.ClientAuthNone && ca.Mode != "" {
		file := Resolve(dir, ca.CA)
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading client CA file %s: %w", file, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA file %s holds no PEM certificate", file)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if ca.Mode == config.ClientAuthRequire {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// Config is the listener's tls.Config (tests; the listener uses it).
func (f *Front) Config() *tls.Config { return f.cfg }

// Reload reads the certificate files again and swaps the new set in when
// their content changed. A pair that does not load is refused, logged
// with the file and the reason, and the running set stays.
func (f *Front) Reload(why string) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	set, err := loadSet(f.pairs)
	if err != nil {
		f.opts.Log.Error("tls certificates refused; the running ones stay", "listen", f.addr, "trigger", why, "error", err.Error())
		return
	}
	if set.sum == f.certs.Load().sum {
		return
	}
	f.certs.Store(set)
	publishExpiry(set)
	serials := make([]string, len(set.all))
	for i, e := range set.all {
		serials[i] = e.leaf.SerialNumber.Text(16)
	}
	f.opts.Log.Info("tls certificates reloaded", "listen", f.addr, "trigger", why, "serials", serials)
}

// Watch polls the certificate files every interval until stop closes and
// reloads when one changed. Polling, like the config watcher, follows the
// ways certificates are renewed in practice: certbot and cert-manager
// swap symlinks or rename files into place, which an inotify watch on the
// old inode misses.
func (f *Front) Watch(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := f.fileStamp()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if cur := f.fileStamp(); cur != last {
				last = cur
				f.Reload("file change")
			}
		}
	}
}

// fileStamp is a cheap summary of the files' state: size and mtime of
// each (following symlinks). A change of it triggers a full reload, which
// compares the content.
func (f *Front) fileStamp() string {
	var b []byte
	for _, p := range f.pairs {
		for _, name := range p {
			if st, err := os.Stat(name); err == nil {
				b = fmt.Appendf(b, "%d:%d;", st.Size(), st.ModTime().UnixNano())
			} else {
				b = append(b, "missing;"...)
			}
		}
	}
	return string(b)
}

// Check loads every certificate pair and client CA of cfg's listeners, as
// `weir validate` and a start do. Errors name the place, the file and the
// reason; warnings name certificates that have expired or are not valid
// yet, with the date.
func Check(cfg *config.Config, file string) (errs config.ErrorList, warnings []string) {
	dir := ""
	if file != "" {
		dir = filepath.Dir(file)
	}
	for i, l := range cfg.Listen {
		if l.TLS == nil {
			continue
		}
		place := "listen"
		if len(cfg.Listen) > 1 {
			place = fmt.Sprintf("listen[%d]", i)
		}
		for j, p := range l.TLS.Certificates {
			pl := fmt.Sprintf("%s.tls.certificates[%d]", place, j)
			e, _, err := loadPair(Resolve(dir, p.Cert), Resolve(dir, p.Key))
			if err != nil {
				errs = append(errs, &config.Error{File: file, Place: pl, Msg: err.Error() + ": give a PEM certificate chain and its matching private key"})
				continue
			}
			now := time.Now()
			if now.After(e.leaf.NotAfter) {
				warnings = append(warnings, fmt.Sprintf("%s: %s: certificate %s expired on %s: renew it",
					file, pl, e.file, e.leaf.NotAfter.UTC().Format(time.RFC3339)))
			} else if now.Before(e.leaf.NotBefore) {
				warnings = append(warnings, fmt.Sprintf("%s: %s: certificate %s is not valid before %s",
					file, pl, e.file, e.leaf.NotBefore.UTC().Format(time.RFC3339)))
			}
		}
		if _, err := baseConfig(l, dir); err != nil {
			errs = append(errs, &config.Error{File: file, Place: place + ".tls.client_auth.ca", Msg: err.Error()})
		}
		if a := l.TLS.ACME; a != nil {
			if _, err := acmeRoots(a, dir); err != nil {
				errs = append(errs, &config.Error{File: file, Place: place + ".tls.acme.ca", Msg: err.Error() + ": give the PEM roots of the ACME server's HTTPS certificate"})
			}
		}
	}
	return errs, warnings
}

var errPlainHTTP = errors.New("tlsfront: a plain HTTP request was sent to the TLS port")

var errNoKeys = errors.New("no session ticket key in redis")
