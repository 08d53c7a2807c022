package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weirgw/weir/proxy/config"
)

// upstreamTLS is the TLS client of a service's https:// targets, built
// once per config compile (files read, certificates parsed) and shared by
// forwarding (each target's transport works on a copy) and active health
// checks; nothing of it is done per request.
type upstreamTLS struct {
	cfg *tls.Config
	// id fingerprints the settings and the bytes of the files they name.
	// Transports and checkers are kept across a reload when it is equal,
	// with their warm connections and sessions, and replaced when it is
	// not, so a certificate rotated on disk takes effect at the next
	// reload even under the same file names.
	id string
}

// buildUpstreamTLS compiles services[].tls (nil: system roots, the
// target's host as server name). Relative file names are relative to dir,
// the config file's directory. An error names the key at fault (field)
// and what to do.
func buildUpstreamTLS(t *config.UpstreamTLS, dir string) (u *upstreamTLS, field string, err error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t == nil {
		return &upstreamTLS{cfg: c, id: "default"}, "", nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "%q|%v|%q|", t.ServerName, t.InsecureSkipVerify, t.MinVersion)
	read := func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) && dir != "" {
			name = filepath.Join(dir, name)
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		h.Write([]byte(strconv.Itoa(len(b)) + ":"))
		h.Write(b)
		return b, nil
	}
	if v, ok := config.UpstreamTLSVersion(t.MinVersion); ok {
		c.MinVersion = v
	}
	c.ServerName = t.ServerName
	c.InsecureSkipVerify = t.InsecureSkipVerify
	if t.CA != "" {
		b, err := read(t.CA)
		if err != nil {
			return nil, "ca", err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, "ca", fmt.Errorf("%s holds no PEM certificate: give the CA certificates (-----BEGIN CERTIFICATE-----) the upstream's certificate is issued by", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		cb, err := read(t.Cert)
		if err != nil {
			return nil, "cert", err
		}
		kb, err := read(t.Key)
		if err != nil {
			return nil, "key", err
		}
		pair, err := tls.X509KeyPair(cb, kb)
		if err != nil {
			return nil, "key", fmt.Errorf("loading the client certificate %s with the key %s: %s", t.Cert, t.Key, strings.TrimPrefix(err.Error(), "tls: "))
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return &upstreamTLS{cfg: c, id: hex.EncodeToString(h.Sum(nil))}, "", nil
}
