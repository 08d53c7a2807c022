package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// Optimistic concurrency (RFC 9110): every answer about the config (GET
// /config, the object endpoints, their write answers, POST /config/diff)
// carries the running config's ETag, and a request with If-Match is
// refused with 412 unless it names the running config's tag. One tag
// covers the whole config: a write to any object makes every earlier tag
// stale, which is what a read-modify-write of the config needs.

// etagCache computes the ETag of a snapshot's config once.
type etagCache struct {
	// key makes the tag an HMAC: a plain hash of the config would let a
	// token holder, who reads every other byte of it through GET /config,
	// test guesses of a masked secret offline. Tags are therefore per
	// process: a restart turns every earlier tag stale, which only costs
	// the client a re-read.
	key  []byte
	last atomic.Pointer[etagEntry]
}

type etagEntry struct {
	snap *proxy.Snapshot
	tag  string
	// The tag is the HMAC of rest, the SHA-256 of the config's JSON
	// without its consumers, and of consumers, the sum (mod 2^256, four
	// words) of the SHA-256 of each consumer's JSON: a change of one
	// consumer moves the sum by the difference of two hashes, so the tag
	// of the next config costs the same at a million consumers as at ten
	// (changed). The sum does not see the order of the consumers, which
	// no endpoint but PUT /config changes and which changes nothing a
	// request sees.
	rest      [sha256.Size]byte
	consumers sum256
}

type sum256 [4]uint64

func (s *sum256) add(c *config.Consumer, sign int) {
	raw, err := json.Marshal(c)
	if err != nil {
		raw = []byte(err.Error()) // unreachable for a config type
	}
	h := sha256.Sum256(raw)
	var carry uint64
	for i := range s {
		w := binary.LittleEndian.Uint64(h[8*i:])
		if sign > 0 {
			s[i], carry = bits.Add64(s[i], w, carry)
		} else {
			s[i], carry = bits.Sub64(s[i], w, carry)
		}
	}
}

func newETagKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// of is the strong ETag of snap's config: equal configs give equal tags,
// whatever their version.
func (c *etagCache) of(snap *proxy.Snapshot) string {
	if e := c.last.Load(); e != nil && e.snap == snap {
		return e.tag
	}
	e := &etagEntry{snap: snap}
	rest := *snap.Config
	rest.Consumers = nil
	raw, err := config.Marshal(&rest)
	if err != nil {
		// Unreachable for a config that compiled; the version still
		// changes with every apply.
		raw = []byte(fmt.Sprintf("version %d", snap.Version))
	}
	e.rest = sha256.Sum256(raw)
	for i := range snap.Config.Consumers {
		e.consumers.add(&snap.Config.Consumers[i], 1)
	}
	c.store(e)
	return e.tag
}

// changed derives the tag of next, whose config is before's with
// consumer old (nil: none) replaced by c (nil: none), from before's tag
// when that is the last one computed; else next's is computed when asked.
func (c *etagCache) changed(before, next *proxy.Snapshot, old, cons *config.Consumer) {
	e := c.last.Load()
	if e == nil || e.snap != before {
		return
	}
	n := &etagEntry{snap: next, rest: e.rest, consumers: e.consumers}
	if old != nil {
		n.consumers.add(old, -1)
	}
	if cons != nil {
		n.consumers.add(cons, 1)
	}
	c.store(n)
}

func (c *etagCache) store(e *etagEntry) {
	mac := hmac.New(sha256.New, c.key)
	mac.Write(e.rest[:])
	var b [32]byte
	for i, w := range e.consumers {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
	mac.Write(b[:])
	e.tag = `"` + hex.EncodeToString(mac.Sum(nil)[:16]) + `"`
	c.last.Store(e)
}

// condWriter carries the request to apply, which checks If-Match again
// under the write lock: the check in conditional runs before the lock, and
// another write may land in between.
type condWriter struct {
	http.ResponseWriter
	req *http.Request
}

func (w *condWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// conditional sets the ETag on the config endpoints' answers and refuses
// a request whose If-Match does not hold before it is processed (RFC 9110
// evaluates preconditions first, so a stale DELETE of a missing object is
// 412, not 404). The tag set here is the config's before the request; a
// write that applies replaces it with the new config's.
func (a *Admin) conditional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isConfigPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		// Taken before the handler reads the config: if a write lands in
		// between, the answer's tag is older than its body, and a write
		// made with it gets 412 rather than overwriting unseen changes.
		w.Header().Set("ETag", a.etags.of(a.srv.Current()))
		cw := &condWriter{ResponseWriter: w, req: r}
		if !a.preconditionHolds(cw) {
			return
		}
		next.ServeHTTP(cw, r)
	})
}

// isConfigPath reports whether path is about the config: /config,
// /config/diff, and the services, routes and consumers endpoints (a
// service's health is live state, not config).
func isConfigPath(path string) bool {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch seg[0] {
	case "config":
		return true
	case "services":
		return !(len(seg) == 3 && seg[2] == "health")
	case "routes", "consumers":
		return true
	}
	return false
}

// preconditionHolds evaluates If-Match against the running config and
// answers 412 itself when it fails. Writers that did not come through
// conditional (none today) have no precondition.
func (a *Admin) preconditionHolds(w http.ResponseWriter) bool {
	cw, ok := w.(*condWriter)
	if !ok {
		return true
	}
	list := cw.req.Header.Values("If-Match")
	if len(list) == 0 {
		return true
	}
	snap := a.srv.Current()
	tag := a.etags.of(snap)
	if ifMatch(list, tag, func() bool { return targetExists(snap.Config, cw.req.URL.Path) }) {
		return true
	}
	w.Header().Set("ETag", tag)
	writeError(w, http.StatusPreconditionFailed, fmt.Sprintf(
		"If-Match %s does not match the running config (ETag %s): it changed since you read it; read it again and retry",
		strings.Join(list, ", "), tag))
	return false
}

// ifMatch evaluates If-Match field values (RFC 9110, 13.1.1): "*" holds
// when the target exists; otherwise one listed tag must equal the current
// one by strong comparison, so a weak tag (W/"...") never matches.
func ifMatch(values []string, current string, exists func() bool) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" {
				return exists()
			}
			if t == current {
				return true
			}
		}
	}
	return false
}

// targetExists reports whether the object a path names exists:
// /services/NAME (and what is under it), /routes/NAME, /consumers/NAME.
// The config itself and the collections always exist.
func targetExists(cfg *config.Config, path string) bool {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if len(seg) < 2 || seg[0] == "config" {
		return true
	}
	var k kind
	switch seg[0] {
	case "services":
		k = serviceKind{}
	case "routes":
		k = routeKind{}
	case "consumers":
		k = consumerKind{}
	default:
		return true
	}
	_, ok := k.get(cfg, seg[1])
	return ok
}
