package jwt

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/VictoriaMetrics/metrics"
	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/weirgw/weir/plugins/internal/promlabel"
)

const (
	// maxJWKSBytes bounds a JWKS document; real ones are a few KiB.
	maxJWKSBytes = 1 << 20
	// maxJWKSKeys bounds how many keys one document may contribute, which
	// bounds the work of verifying a token that has no kid.
	maxJWKSKeys = 64
)

var (
	errJWKSUnavailable = errors.New("jwks not loaded")
	errUnknownKey      = errors.New("no key for this token")
)

// jwksKey is one usable verification key of a JWKS document.
type jwksKey struct {
	alg string // the JWK's "alg", "" when it does not restrict the algorithm
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keySet is one fetched JWKS document, immutable once published.
type keySet struct {
	byKid map[string][]jwksKey
	all   []jwksKey
}

// jwksSource keeps the keys of jwks_url fresh. A background goroutine
// (started by Start, stopped by Close) refetches every `refresh`; a token
// with an unknown kid may cause an earlier fetch, at most one per
// `minRefresh` (rate limit) and never two at once (single flight), so a
// flood of random kids costs the key server one request per interval.
//
// Each fetch replaces the whole set: a key removed from the document is
// removed here (the lesson of jwkset's GHSA-675f-rq2r-jw82, where removed
// keys lingered).
type jwksSource struct {
	url        string
	client     *http.Client
	refresh    time.Duration
	minRefresh time.Duration
	log        *slog.Logger
	fetchOK    *metrics.Counter
	fetchErr   *metrics.Counter

	keys atomic.Pointer[keySet] // nil until the first successful fetch

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	inflight  chan struct{} // non-nil while a fetch runs; closed when it ends
	lastStart time.Time     // start of the latest fetch
	lastOK    bool          // whether the latest fetch succeeded
	started   bool
	closed    bool
	wg        sync.WaitGroup
	firstDone chan struct{} // closed when the first fetch ends
}

func newJWKSSource(cfg *config, route string, log *slog.Logger) *jwksSource {
	ctx, cancel := context.WithCancel(context.Background())
	lbl := `route=` + promlabel.Quote(route)
	return &jwksSource{
		url:        cfg.JWKSURL,
		client:     &http.Client{Timeout: cfg.JWKSTimeout.D()},
		refresh:    cfg.JWKSRefresh.D(),
		minRefresh: cfg.JWKSMinRefresh.D(),
		log:        log,
		fetchOK:    metrics.GetOrCreateCounter(`weir_jwt_jwks_fetches_total{` + lbl + `,result="ok"}`),
		fetchErr:   metrics.GetOrCreateCounter(`weir_jwt_jwks_fetches_total{` + lbl + `,result="error"}`),
		ctx:        ctx,
		cancel:     cancel,
		firstDone:  make(chan struct{}),
	}
}

// start launches the refresh loop and waits (bounded by the HTTP timeout)
// for the first fetch, so a new snapshot normally serves with its keys
// loaded. A failed first fetch is logged, not returned: the loop retries
// every minRefresh and tokens get 503 until keys arrive.
func (s *jwksSource) start() {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.wg.Add(1)
	s.mu.Unlock()
	go s.loop()
	select {
	case <-s.firstDone:
	case <-time.After(s.client.Timeout + 100*time.Millisecond):
	}
}

func (s *jwksSource) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.client.CloseIdleConnections()
}

func (s *jwksSource) loop() {
	defer s.wg.Done()
	first := true
	for {
		if ch := s.trigger(true); ch != nil {
			select {
			case <-ch:
			case <-s.ctx.Done():
				return
			}
		}
		if first {
			first = false
			close(s.firstDone)
		}
		s.mu.Lock()
		wait := s.refresh
		if !s.lastOK {
			// Retry a failing key server sooner, but no more often than an
			// unknown kid could make us.
			wait = s.minRefresh
		}
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// trigger starts a fetch unless one is running (whose channel it returns)
// or, when !force, the latest started less than minRefresh ago (it then
// returns nil). The returned channel is closed when the fetch ends.
func (s *jwksSource) trigger(force bool) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.inflight != nil {
		return s.inflight
	}
	now := time.Now()
	if !force && !s.lastStart.IsZero() && now.Sub(s.lastStart) < s.minRefresh {
		return nil
	}
	ch := make(chan struct{})
	s.inflight = ch
	s.lastStart = now
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.fetch()
		s.mu.Lock()
		s.inflight = nil
		s.lastOK = err == nil
		s.mu.Unlock()
		close(ch)
	}()
	return ch
}

// lookup returns the key(s) for a token's kid and alg: one key, or a
// gojwt.VerificationKeySet when several fit (a token without kid). An
// unknown kid may wait for one rate-limited refetch.
func (s *jwksSource) lookup(kid string, hasKid bool, alg string) (any, error) {
	ks := s.keys.Load()
	if ks != nil {
		if k := ks.find(kid, hasKid, alg); k != nil {
			return k, nil
		}
		if !hasKid {
			return nil, errUnknownKey
		}
	}
	// Unknown kid (a rotation we have not seen yet) or no keys at all:
	// ask for a refetch; only one caller per minRefresh gets one.
	ch := s.trigger(false)
	if ch == nil {
		if ks == nil {
			return nil, errJWKSUnavailable
		}
		return nil, errUnknownKey
	}
	select {
	case <-ch:
	case <-s.ctx.Done():
		return nil, errJWKSUnavailable
	}
	if ks = s.keys.Load(); ks == nil {
		return nil, errJWKSUnavailable
	}
	if k := ks.find(kid, hasKid, alg); k != nil {
		return k, nil
	}
	return nil, errUnknownKey
}

// find returns the key for kid that can verify alg, a VerificationKeySet
// when the token has no kid and several keys fit, or nil.
func (ks *keySet) find(kid string, hasKid bool, alg string) any {
	cands := ks.all
	if hasKid {
		cands = ks.byKid[kid]
	}
	var first any
	var set *gojwt.VerificationKeySet
	for i := range cands {
		k := &cands[i]
		if (k.alg != "" && k.alg != alg) || !keyFits(alg, k.key) {
			continue
		}
		switch {
		case first == nil:
			first = k.key
		case set == nil:
			set = &gojwt.VerificationKeySet{Keys: []gojwt.VerificationKey{first, k.key}}
		default:
			set.Keys = append(set.Keys, k.key)
		}
	}
	if set != nil {
		return *set
	}
	return first
}

// fetch downloads and parses the JWKS document and publishes it.
func (s *jwksSource) fetch() error {
	ks, err := s.download()
	if err != nil {
		s.fetchErr.Inc()
		if s.log != nil && s.ctx.Err() == nil {
			s.log.Warn("jwt: fetching jwks failed; keeping the previous keys", "url", s.url, "error", err)
		}
		return err
	}
	s.fetchOK.Inc()
	s.keys.Store(ks)
	return nil
}

func (s *jwksSource) download() (*keySet, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build jwks request: %w", err)
	}
	// RFC 7517 §8.5 registers application/jwk-set+json.
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("get jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks document is larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS turns a JWK Set (RFC 7517 §5) into usable public keys. Keys
// that are not for signatures, are private or symmetric ("oct" keys never
// come from a JWKS URL: a shared secret published over HTTP is no secret),
// or fail jwkset's validation are skipped rather than failing the document,
// so one odd key does not take the others down.
func parseJWKS(body []byte) (*keySet, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`parse jwks: no "keys" member`)
	}
	ks := &keySet{byKid: map[string][]jwksKey{}}
	for _, raw := range *doc.Keys {
		if len(ks.all) == maxJWKSKeys {
			break
		}
		jwk, err := jwkset.NewJWKFromRawJSON(raw, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			continue
		}
		m := jwk.Marshal()
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		key := jwk.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public()
		}
		k := jwksKey{alg: m.ALG.String(), key: key}
		if _, ok := key.([]byte); ok {
			continue
		}
		ks.all = append(ks.all, k)
		ks.byKid[m.KID] = append(ks.byKid[m.KID], k)
	}
	return ks, nil
}
