package oauth2introspection

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weirgw/weir/sdk"
)

// maxResponseBytes bounds an introspection answer; real ones are < 2 KiB.
const maxResponseBytes = 64 << 10

// introspection is the normalized answer about one token: what the cache
// stores (in memory and, as JSON, in Redis) and what identities are built
// from. It never holds the token itself.
type introspection struct {
	Active   bool   `json:"a"`
	Sub      string `json:"sub,omitempty"`
	ClientID string `json:"cid,omitempty"`
	Scope    string `json:"scope,omitempty"`
	// Until is when the answer stops being trusted, unix milliseconds:
	// the earlier of the token's exp and cache_ttl (negative_ttl for
	// inactive tokens).
	Until int64 `json:"u"`
}

// client calls the introspection endpoint (RFC 7662 §2).
type client struct {
	url       string
	authz     string // precomputed Basic credentials, "" for none
	hint      string
	http      *http.Client
	transport *http.Transport
}

func newClient(cfg *config) *client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout.D(),
		ResponseHeaderTimeout: cfg.Timeout.D(),
		ForceAttemptHTTP2:     true,
	}
	c := &client{
		url:       cfg.IntrospectionURL,
		hint:      *cfg.TokenTypeHint,
		transport: tr,
		// Timeout bounds the whole exchange, body included.
		http: &http.Client{Transport: tr, Timeout: cfg.Timeout.D()},
	}
	if cfg.ClientID != "" {
		// RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
		userpass := url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(cfg.ClientSecret)
		c.authz = "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
	}
	return c
}

var (
	errStatus  = errors.New("introspection endpoint answered an error status")
	errGarbage = errors.New("introspection endpoint answered something that is not an RFC 7662 response")
)

// endIntrospectionSpan records a call's outcome on its span and ends it.
func endIntrospectionSpan(span trace.Span, target string, raw *rawResponse, err error) {
	span.SetAttributes(attribute.String("url.full", target))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "introspection failed")
	} else {
		span.SetAttributes(attribute.Bool("oauth2.token.active", raw.active))
	}
	span.End()
}

// introspect asks the server about token. Any failure (transport, status,
// body) is an error: a broken server never makes a token active.
func (c *client) introspect(ctx context.Context, token string) (*rawResponse, error) {
	form := "token=" + url.QueryEscape(token)
	if c.hint != "" {
		form += "&token_type_hint=" + url.QueryEscape(c.hint)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(form))
	if err != nil {
		return nil, fmt.Errorf("build introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.authz != "" {
		req.Header.Set("Authorization", c.authz)
	}
	if tp := sdk.TraceparentOf(ctx); tp != "" {
		req.Header.Set("Traceparent", tp) // the introspection span, when the request is recorded
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspect token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read introspection response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %d", errStatus, resp.StatusCode)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", errGarbage, maxResponseBytes)
	}
	return parseResponse(body)
}

// rawResponse holds the RFC 7662 §2.2 members the gateway uses.
type rawResponse struct {
	active   bool
	sub      string
	clientID string
	scope    string
	exp, nbf float64 // 0 when absent
}

// parseResponse reads an RFC 7662 §2.2 response strictly: the body must be
// one JSON object whose "active" member is a JSON boolean, and the members
// used must have their registered types. Member names are matched exactly
// (encoding/json would accept "Active") and a repeated member is refused
// (which of two "active" values counts is not something to guess).
// Anything else is garbage: an error, never an active token.
func parseResponse(body []byte) (*rawResponse, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", errGarbage)
	}
	var (
		r         rawResponse
		seen      = map[string]bool{}
		hasActive bool
	)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errGarbage, err)
		}
		name, _ := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("%w: %v", errGarbage, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: member %q repeated", errGarbage, name)
		}
		seen[name] = true
		var dst any
		switch name {
		case "active":
			switch string(val) {
			case "true":
				r.active = true
			case "false":
			default:
				return nil, fmt.Errorf(`%w: "active" must be true or false`, errGarbage)
			}
			hasActive = true
			continue
		case "scope":
			dst = &r.scope
		case "client_id":
			dst = &r.clientID
		case "sub":
			dst = &r.sub
		case "exp":
			dst = &r.exp
		case "nbf":
			dst = &r.nbf
		default:
			continue // other members (RFC 7662 §2.2 allows extensions)
		}
		if string(val) == "null" {
			continue // an optional member written as null: absent
		}
		if err := json.Unmarshal(val, dst); err != nil {
			return nil, fmt.Errorf("%w: %q has the wrong type", errGarbage, name)
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, fmt.Errorf("%w: unterminated object", errGarbage)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", errGarbage)
	}
	if !hasActive {
		return nil, fmt.Errorf(`%w: no "active" member`, errGarbage)
	}
	for _, v := range []float64{r.exp, r.nbf} {
		if math.IsNaN(v) || v < 0 || v > 1e12 {
			return nil, fmt.Errorf("%w: exp/nbf out of range", errGarbage)
		}
	}
	if !r.active {
		return &rawResponse{}, nil
	}
	return &r, nil
}

// normalize turns a server answer into what is cached, deciding how long
// it may be trusted. An active token whose exp has passed, or whose nbf
// has not, is treated as inactive whatever the server said.
func normalize(r *rawResponse, now time.Time, cacheTTL, negativeTTL time.Duration) *introspection {
	nowMs := now.UnixMilli()
	if r.active {
		expMs := int64(r.exp * 1000)
		if (r.exp != 0 && expMs <= nowMs) || (r.nbf != 0 && int64(r.nbf*1000) > nowMs) {
			r.active = false
		}
	}
	if !r.active {
		return &introspection{Until: nowMs + negativeTTL.Milliseconds()}
	}
	until := nowMs + cacheTTL.Milliseconds()
	if r.exp != 0 {
		until = min(until, int64(r.exp*1000))
	}
	return &introspection{Active: true, Sub: r.sub, ClientID: r.clientID, Scope: r.scope, Until: until}
}
