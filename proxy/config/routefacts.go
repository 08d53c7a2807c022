package config

import (
	"crypto/sha256"

	json "github.com/goccy/go-json"
)

// RouteSum is a hash of a route's config (RouteHash).
type RouteSum [sha256.Size]byte

// routeFacts is what a Reader knows of the routes of a config it read
// (Config.facts): which came unchanged from the last valid document, and
// their hashes. The facts hold for the Routes slice they were made for
// only: a config whose routes were replaced (Clone, an admin write) has
// none.
type routeFacts struct {
	first *Route // &Routes[0] of the config read
	// known[i]: route i came from the memo, so it passed every check
	// that depends on it alone in an earlier document.
	known []bool
	hash  []RouteSum // zero where not computed yet
}

// routeFacts returns c's facts when they still describe c.Routes.
func (c *Config) routeFacts() *routeFacts {
	f := c.facts
	if f == nil || len(c.Routes) != len(f.known) || len(c.Routes) == 0 || &c.Routes[0] != f.first {
		return nil
	}
	return f
}

// knownRoute reports whether route i of c came unchanged from a document
// that passed every check.
func (c *Config) knownRoute(i int) bool {
	f := c.routeFacts()
	return f != nil && f.known[i]
}

// RouteHash is the SHA-256 of route i's JSON (goccy/go-json, which sorts
// map keys): two routes that say the same hash the same. A route a Reader
// kept from the last read has its hash computed already, so a reload that
// changes one route of 10,000 hashes one.
func (c *Config) RouteHash(i int) RouteSum {
	f := c.routeFacts()
	if f != nil && f.hash[i] != (RouteSum{}) {
		return f.hash[i]
	}
	b, err := json.Marshal(&c.Routes[i])
	if err != nil {
		// Cannot happen for config types; a hash nobody else has means
		// "build anew", the safe answer.
		b = []byte(err.Error())
	}
	return sha256.Sum256(b)
}
