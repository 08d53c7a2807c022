package tlsfront

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP stapling: a certificate that names an OCSP responder (and whose
// file holds its issuer after it) gets the responder's answer stapled to
// its handshakes, so clients need not ask the responder themselves. The
// answer is fetched in the background, never on a handshake's time, and
// fetched again halfway to its NextUpdate; until the first answer, or when
// the responder fails, handshakes go on without a staple.

const (
	ocspTimeout  = 5 * time.Second
	ocspRetry    = time.Minute
	ocspMaxBytes = 64 << 10
)

// ocspState is an entry's stapling state; only the stapler goroutine
// touches next and issuer.
type ocspState struct {
	issuer *x509.Certificate
	next   time.Time
}

// current is the certificate to serve: with the latest staple, if any.
func (e *entry) current() *tls.Certificate {
	if c := e.stapled.Load(); c != nil {
		return c
	}
	return e.cert
}

// wantsOCSP reports whether the entry can be stapled, and finds its
// issuer (the second certificate of the chain file).
func (e *entry) wantsOCSP() bool {
	if len(e.leaf.OCSPServer) == 0 || len(e.cert.Certificate) < 2 {
		return false
	}
	if e.ocsp.issuer == nil {
		iss, err := x509.ParseCertificate(e.cert.Certificate[1])
		if err != nil {
			return false
		}
		e.ocsp.issuer = iss
	}
	return true
}

// Staple runs until stop closes, keeping the staples of the running
// certificate set fresh. It looks once a second which entry is due: the
// set may be swapped by a reload at any time, and a new set's entries are
// due at once.
func (f *Front) Staple(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	client := &http.Client{Timeout: ocspTimeout}
	for {
		now := time.Now()
		for _, e := range f.certs.Load().all {
			if now.Before(e.ocsp.next) || !e.wantsOCSP() {
				continue
			}
			next, err := e.fetchOCSP(client)
			if err != nil {
				f.opts.Log.Warn("ocsp staple not refreshed; handshakes go on without a new one", "cert", e.file,
					"responder", e.leaf.OCSPServer[0], "error", err.Error(), "retry_in", ocspRetry.String())
				next = now.Add(ocspRetry)
			}
			e.ocsp.next = next
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// fetchOCSP asks the responder about e's certificate, staples a good
// answer and returns when to ask again.
func (e *entry) fetchOCSP(client *http.Client) (time.Time, error) {
	req, err := ocsp.CreateRequest(e.leaf, e.ocsp.issuer, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("building the ocsp request: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ocspTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, e.leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return time.Time{}, fmt.Errorf("building the ocsp request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	resp, err := client.Do(hr)
	if err != nil {
		return time.Time{}, fmt.Errorf("asking the ocsp responder: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("the ocsp responder answered %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, ocspMaxBytes))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the ocsp answer: %w", err)
	}
	r, err := ocsp.ParseResponseForCert(raw, e.leaf, e.ocsp.issuer)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing the ocsp answer: %w", err)
	}
	if r.Status != ocsp.Good {
		// A revoked certificate is the operator's to replace; stapling
		// the answer would only make every client fail harder.
		return time.Time{}, fmt.Errorf("the ocsp responder says the certificate is not good (status %d)", r.Status)
	}
	now := time.Now()
	if !r.NextUpdate.IsZero() && !now.Before(r.NextUpdate) {
		return time.Time{}, fmt.Errorf("the ocsp answer is already out of date (next update %s)", r.NextUpdate.UTC().Format(time.RFC3339))
	}
	c := *e.cert
	c.OCSPStaple = raw
	e.stapled.Store(&c)
	next := now.Add(time.Hour)
	if !r.NextUpdate.IsZero() {
		next = now.Add(r.NextUpdate.Sub(now) / 2)
	}
	if next.Before(now.Add(ocspRetry)) {
		next = now.Add(ocspRetry)
	}
	return next, nil
}
