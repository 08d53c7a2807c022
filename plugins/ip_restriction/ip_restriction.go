// Package iprestriction is the ip_restriction plugin: it answers 403 to
// clients whose address is in a deny list or, when an allow list is set, not
// in it. Lists are CIDRs (IPv4 and IPv6), compiled into prefix sets when the
// config loads.
//
// The client address is the connection's peer, unless the peer is one of the
// configured trusted_proxies: then it is read from X-Forwarded-For, right to
// left, skipping trusted hops (see clientFromXFF).
package iprestriction

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"github.com/VictoriaMetrics/metrics"
	"github.com/weirgw/weir/sdk"
)

func init() { sdk.Register(sdk.Factory{Name: "ip_restriction", New: New}) }

// Config is the plugin's `config` object.
type Config struct {
	// Allow lists the only addresses let through; empty = everyone not denied.
	Allow []string `json:"allow"`
	// Deny lists refused addresses; it wins over Allow.
	Deny []string `json:"deny"`
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []string `json:"trusted_proxies"`
}

const headerXFF = "X-Forwarded-For"

type filter struct {
	allow, deny, trusted prefixSet

	// Counters by reason, obtained once in New.
	denied     *metrics.Counter // in the deny list
	notAllowed *metrics.Counter // not in the allow list
	unknown    *metrics.Counter // the client address could not be determined
}

// New validates and compiles the config.
func New(b *sdk.Build, raw json.RawMessage) (sdk.Filter, error) {
	var cfg Config
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Allow) == 0 && len(cfg.Deny) == 0 {
		return nil, errors.New("set allow or deny (lists of addresses or CIDRs such as 10.0.0.0/8)")
	}
	f := &filter{}
	// Each list is checked and the errors joined: one run shows them all.
	var errA, errD, errT error
	f.allow, errA = parsePrefixes("allow", cfg.Allow)
	f.deny, errD = parsePrefixes("deny", cfg.Deny)
	f.trusted, errT = parsePrefixes("trusted_proxies", cfg.TrustedProxies)
	if err := errors.Join(errA, errD, errT); err != nil {
		return nil, err
	}
	route := b.Route
	if route == "" {
		route = "_global"
	}
	name := func(reason string) string {
		return fmt.Sprintf(`weir_ip_restriction_rejected_total{route=%q,reason=%q}`, route, reason)
	}
	f.denied = metrics.GetOrCreateCounter(name("deny"))
	f.notAllowed = metrics.GetOrCreateCounter(name("not_allowed"))
	f.unknown = metrics.GetOrCreateCounter(name("unknown_client"))
	return f, nil
}

// OnRequest lets the request through or answers 403. It does not allocate.
func (f *filter) OnRequest(c *sdk.Ctx) (sdk.Status, error) {
	ip, ok := f.clientIP(c)
	switch {
	case !ok:
		// Fail closed: an address we cannot read might be anyone's,
		// including a denied one.
		f.unknown.Inc()
	case f.deny.contains(ip):
		f.denied.Inc()
	case !f.allow.empty() && !f.allow.contains(ip):
		f.notAllowed.Inc()
	default:
		return sdk.Continue, nil
	}
	return c.Fail(403, "forbidden"), nil
}

// clientIP is the address the lists are checked against.
func (f *filter) clientIP(c *sdk.Ctx) (netip.Addr, bool) {
	peer := c.ClientIP()
	if !peer.IsValid() {
		return netip.Addr{}, false
	}
	if f.trusted.empty() || !f.trusted.contains(peer) {
		return peer, true
	}
	return clientFromXFF(c.Request().Header.PeekAll(headerXFF), &f.trusted, peer)
}
