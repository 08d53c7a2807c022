package proxy

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"

	json "github.com/goccy/go-json"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
)

// A reload that changes one route of ten thousand compiles that route,
// not the ten thousand: the plugin instances and metric handles of every
// route whose config is unchanged move from the running snapshot to the
// new one (issue 17: a full rebuild took 400+ ms and its garbage cut the
// traffic of the reload to a quarter).
//
// The piece that moves is a unit: a route's own plugin instances and its
// metric handles, or the global plugin instances. A unit is keyed by a
// hash of the config it was built from (the route's JSON and its
// service's), and is reused only when everything else its instances were
// built with is the same too (reuseCtx: redis, config directory), and,
// for a unit whose plugins read the consumers while they were built
// (sdk.Consumers.ReadSince), the consumers. A unit whose plugins read
// consumers only through credential indexes (sdk.IndexSlot, key_auth's
// keys) is kept when consumers change: the new consumers carry the
// indexes it needs, updated or built anew. The route's chain (its filters with the globals') moves
// with its unit while the globals unit is the same (chain); the route
// itself (its service, its aggregate) is made anew each time: it is cheap
// and points into the new snapshot.
//
// Ownership: a unit is owned by one snapshot, the one that closes its
// filters (sdk.Closer) when it retires. A unit is started by the
// snapshot that built it; a snapshot that reuses it takes it over when it
// is swapped in (handOver), so the retiring one leaves it alone. A new
// snapshot that fails to compile or start closes only the units it built.
type unit struct {
	key     unitKey
	filters []sdk.Filter  // a route's own, in order; the globals by index, nil where disabled
	names   []string      // a route's own: the plugin name of each filter
	m       *routeMetrics // nil for the globals
	// chain is the route chain made of the unit and a globals unit
	// (newChain), kept for the next snapshot that reuses both; set
	// under the server's applyMu.
	chain *chain
	// readsConsumers: a plugin read consumers while the unit was built,
	// so it holds what it read; slots are the credential indexes its
	// plugins use (sdk.Consumers.ReadSince).
	readsConsumers bool
	slots          uint64
	started        bool // set by start, under the server's applyMu
	owner          atomic.Pointer[Snapshot]
}

type unitKey [sha256.Size]byte

// reuseCtx is what every plugin instance of a snapshot was built with
// besides its own config and the consumers (sdk.Build); a unit of a
// snapshot with another context is never reused.
type reuseCtx struct {
	redis     string // the redis section (redisKey): the client follows it
	configDir string
}

// keyOf hashes v's JSON. The JSON covers every field of the config
// types, including those added later, so no change is missed; equal
// values always hash equal (map keys are sorted). The encoder is
// goccy/go-json's: at 10,000 routes encoding/json's reflection took a
// tenth of a one-route reload to write bytes that are only hashed.
func keyOf(v any) unitKey {
	b, err := json.Marshal(v)
	if err != nil {
		// Cannot happen for config types; a key nobody else has means
		// "build anew", the safe answer.
		b = []byte(err.Error())
	}
	return sha256.Sum256(b)
}

// consumersKey is keyOf(list) without encoding/json: at a million
// consumers the JSON encoder took a second of start-up (reflection, a map
// sort per consumer) to produce bytes that were only hashed. Every field
// goes in, each string with its length so that no two lists hash alike
// by shifting bytes between fields; credential kinds are sorted, as JSON
// sorts map keys. Credentials are hashed as written: two spellings of one
// JSON value hash apart, which only costs a rebuild.
func consumersKey(list []config.Consumer) unitKey {
	h := sha256.New()
	buf := make([]byte, 0, 256)
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	var kinds []sdk.CredentialList
	for i := range list {
		c := &list[i]
		buf = buf[:0]
		str(c.Name)
		buf = binary.AppendUvarint(buf, uint64(len(c.Groups)))
		for _, g := range c.Groups {
			str(g)
		}
		kinds = append(kinds[:0], c.Credentials...)
		slices.SortFunc(kinds, func(a, b sdk.CredentialList) int { return strings.Compare(a.Plugin, b.Plugin) })
		buf = binary.AppendUvarint(buf, uint64(len(kinds)))
		for _, k := range kinds {
			str(k.Plugin)
			creds := k.List
			buf = binary.AppendUvarint(buf, uint64(len(creds)))
			for _, raw := range creds {
				buf = binary.AppendUvarint(buf, uint64(len(raw)))
				buf = append(buf, raw...)
			}
		}
		h.Write(buf)
	}
	var k unitKey
	h.Sum(k[:0])
	return k
}

// routeKey is the key of route i's unit: its config (config.RouteHash,
// which a config.Reader has for every route it read) and its service's,
// each a SHA-256, combined by XOR: a reload keys 10,000 routes without
// hashing anything of the unchanged ones. The service's hash is of a
// "service" prefix and its JSON, so that it is never a route's; svcSums
// caches the services' hashes by name for the reload.
func routeKey(cfg *config.Config, i int, svcSums map[string]unitKey) unitKey {
	if len(svcSums) == 0 {
		for j := range cfg.Services {
			b, _ := json.Marshal(&cfg.Services[j])
			svcSums[cfg.Services[j].Name] = sha256.Sum256(append([]byte("service\x00"), b...))
		}
		svcSums["\x00"] = unitKey{} // marks the cache filled when there is no service
	}
	k := unitKey(cfg.RouteHash(i))
	svc := svcSums[cfg.Routes[i].Service]
	for j := range k {
		k[j] ^= svc[j]
	}
	return k
}

// lookup returns the unit of s with key k that a snapshot with consumers
// cs may take over (nil when s is nil or there is none).
func (s *Snapshot) lookup(k unitKey, cs *sdk.Consumers) *unit {
	if s == nil {
		return nil
	}
	u := s.byKey[k]
	if u != nil && u.readsConsumers && s.consumers != cs {
		return nil
	}
	return u
}

// buildUnit runs build, which builds u's plugins, and records what they
// read from the consumers.
func buildUnit(u *unit, cs *sdk.Consumers, build func()) {
	cs.ReadSince()
	build()
	u.readsConsumers, u.slots = cs.ReadSince()
}

// adoptIndexes builds, in cs, the credential indexes a unit taken over
// from the running snapshot reads at request time, and asks each of its
// filters that serves only some consumers (sdk.ConsumersChecker) whether
// it takes cs, as its build did: a consumer that the unit's instances
// would refuse is refused (a file's consumers and an admin write of one
// alike). report gets each error with the place of its filter in
// u.filters, or -1 for an index that cannot be built (a key two consumers
// hold).
func adoptIndexes(u *unit, cs *sdk.Consumers, report func(k int, err error)) {
	sdk.Slots(u.slots, func(slot *sdk.IndexSlot) {
		if _, err := cs.Index(slot); err != nil {
			report(-1, err)
		}
	})
	if u.slots == 0 {
		return
	}
	for k, f := range u.filters {
		if c, ok := f.(sdk.ConsumersChecker); ok {
			if err := c.CheckConsumers(cs); err != nil {
				report(k, err)
			}
		}
	}
}

// newUnit adds a unit the snapshot builds and owns.
func (s *Snapshot) newUnit(k unitKey) *unit {
	u := &unit{key: k}
	u.owner.Store(s)
	s.units = append(s.units, u)
	s.byKey[k] = u
	return u
}

// adopt adds a unit of the running snapshot; it stays the running
// snapshot's until handOver.
func (s *Snapshot) adopt(u *unit) {
	s.units = append(s.units, u)
	s.byKey[u.key] = u
}

// handOver makes s the owner of every unit it holds; called once s is
// swapped in, before the snapshot it replaced retires.
func (s *Snapshot) handOver() {
	for _, u := range s.units {
		u.owner.Store(s)
	}
}
