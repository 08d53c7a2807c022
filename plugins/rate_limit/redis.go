package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/plugins/internal/redisguard"
)

// takeScript is one atomic decision on the Redis server: gcraTake in Lua.
// Atomic because Redis runs a script to completion before any other
// command, so concurrent nodes never both spend the last token.
//
// It reads Redis's own clock (TIME) so that the nodes' clocks do not matter;
// since Redis 5 scripts are replicated by their effects, which is what
// makes TIME allowed in a script that writes. Times are microseconds since
// 2023-11-14 (1700000000): small enough that a Lua double (53 bits) keeps
// them to a few hundredths of a microsecond, with T possibly fractional.
//
// State is one string key per bucket key, "TAT0,TAT1,..." (one TAT per
// limit), written with a PX TTL equal to the time until every bucket is
// full again: when it expires, the key's absence means the same thing.
// One key per decision also means the script never crosses cluster slots;
// the hash tag {route:fingerprint:key} makes that explicit.
//
// KEYS[1] bucket key; ARGV[1] tokens wanted (>= 1); ARGV[2] number of
// limits n; then for limit j: ARGV[1+2j] T and ARGV[2+2j] tau, in µs.
// Returns {granted, reported limit index (0-based), remaining, reset µs,
// retry µs, TAT_1 - now, ..., TAT_n - now}: TAT_j - now is how far each
// bucket is from full after the decision, which is what the node's
// fallback starts from if Redis later cannot answer (see fallbackStore).
// When some but not all of the want tokens were granted, retry and two
// more values, the refusal's limit index and its reset µs, describe the
// refusal of the rest (what a refusal with granted 0 says in the first
// five), so that a coalesced call (coalesce.go) can answer every request
// it carried; the common answers stay two values shorter.
//
// Optionally, a charge: requests a node admitted without Redis
// (on_store_failure: local), taken from every limit before the decision
// whether or not tokens are left, so that the other nodes see them. It is
// sent as the node's running total for the key: KEYS[2] a hash (in the
// same slot) of what each node has already been charged, ARGV[3+2n] the
// node, ARGV[4+2n] the epoch of its total (a new total after the node
// forgot the key), ARGV[5+2n] the total, ARGV[6+2n] the hash's TTL in ms,
// ARGV[7+2n] the node's running total of credits: tokens Redis granted
// to this node's calls whose answers came after the request had stopped
// waiting (so the request was decided without them), given back. Only
// the part of each total not already applied is applied (the hash keeps
// both per node, the credits under NODE:credit), so a charge whose answer
// timed out can be sent again without being applied twice. A charge
// overdraws a bucket by at most one more burst; a credit never fills it
// past full.
//
// The common call, one limit and no charge, takes a short path first: the
// same arithmetic on plain locals, without the general path's tables,
// closures, pattern matching and repeated tonumber of the arguments.
// Redis runs it in ~27 % fewer instructions (65.5K against 89.6K per
// EVALSHA under callgrind, `return 1` being 18K), and that is Redis CPU
// on the machine of the gateway or its neighbours. It stores exactly what
// the general path stores (a TAT with an integral value prints the same
// with %d as with %.17g), so nodes running the script of an older Weir
// and nodes running this one share buckets under the same key
// (TestTakeScriptSameAsBefore runs both against one key).
//
// rueidis.NewLuaScript sends EVALSHA and falls back to EVAL on NOSCRIPT
// (after a Redis restart), which loads the script again.
const takeLua = `
local t = redis.call('TIME')
local now = (t[1] - 1700000000) * 1000000 + t[2]
local v = redis.call('GET', KEYS[1])
local x = v and tonumber(v)
if ARGV[2] == '1' and not ARGV[5] and (x or not v) then
  local floor, ceil = math.floor, math.ceil
  local want, T, tau = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local tat = now
  if x and x > now then tat = x end
  local grant = floor((tau - (tat - now)) / T + 1e-6)
  if grant > 0 then
    if grant > want then grant = want end
    tat = tat + grant * T
    local rs = tat - now
    local s
    if tat % 1 == 0 then s = string.format('%d', tat) else s = string.format('%.17g', tat) end
    redis.call('SET', KEYS[1], s, 'PX', string.format('%d', ceil(rs / 1000) + 1))
    local rem = floor((tau - rs) / T + 1e-6)
    local w = tat + T - tau - now
    rs = ceil(rs)
    if grant == want then return {grant, 0, rem, rs, 0, rs} end
    if w > 0 then return {grant, 0, rem, rs, ceil(w), rs, 0, rs} end
    return {grant, 0, rem, rs, 0, rs, 0, 0}
  end
  local rs = tat - now
  local w = tat + T - tau - now
  if w > 0 then rs = ceil(rs) return {0, 0, 0, rs, ceil(w), rs} end
  return {0, 0, 0, 0, 0, ceil(rs)}
end
local want = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local charge = 0
local na = 2 + 2 * n
if ARGV[na + 1] then
  local field, epoch = ARGV[na + 1], ARGV[na + 2]
  local function applied(f, v)
    local prev = redis.call('HGET', KEYS[2], f)
    local done = 0
    if prev then
      local e, c = string.match(prev, '^([^:]+):(.+)$')
      if e == epoch then done = tonumber(c) end
    end
    local total = tonumber(v)
    if total > done then
      redis.call('HSET', KEYS[2], f, epoch .. ':' .. v)
      return total - done
    end
    return 0
  end
  charge = applied(field, ARGV[na + 3])
  if ARGV[na + 5] then charge = charge - applied(field .. ':credit', ARGV[na + 5]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[na + 4])
end
local eps = 1e-6
local tats = {}
if v then
  local i = 1
  for s in string.gmatch(v, '[^,]+') do
    tats[i] = tonumber(s)
    i = i + 1
  end
end
-- refusal is what a request after this decision would be told if it
-- were refused now: the limit that keeps it waiting longest, how long,
-- and how far that bucket is from full.
local function refusal()
  local idx, retry, reset = 1, 0, 0
  for j = 1, n do
    local T, tau = tonumber(ARGV[1 + 2 * j]), tonumber(ARGV[2 + 2 * j])
    local w = tats[j] + T - tau - now
    if w > retry then
      idx, retry, reset = j, w, tats[j] - now
    end
  end
  return idx, retry, reset
end
local grant = want
for j = 1, n do
  local T, tau = tonumber(ARGV[1 + 2 * j]), tonumber(ARGV[2 + 2 * j])
  local tat = tats[j]
  if tat == nil or tat < now then tat = now end
  if charge ~= 0 then tat = math.max(now, math.min(tat + charge * T, now + 2 * tau)) end
  tats[j] = tat
  local avail = math.floor((tau - (tat - now)) / T + eps)
  if avail < grant then grant = avail end
end
if grant > 0 then
  local idx, rem, reset, ttl = 0, 0, 0, 0
  local out = {}
  for j = 1, n do
    local T, tau = tonumber(ARGV[1 + 2 * j]), tonumber(ARGV[2 + 2 * j])
    local tat = tats[j] + grant * T
    tats[j] = tat
    local r = math.floor((tau - (tat - now)) / T + eps)
    local rs = tat - now
    if idx == 0 or r < rem or (r == rem and rs > reset) then
      idx, rem, reset = j, r, rs
    end
    if rs > ttl then ttl = rs end
    out[j] = string.format('%.17g', tat)
  end
  redis.call('SET', KEYS[1], table.concat(out, ','), 'PX', math.ceil(ttl / 1000) + 1)
  local res = {grant, idx - 1, rem, math.ceil(reset), 0}
  for j = 1, n do res[5 + j] = math.ceil(tats[j] - now) end
  if grant < want then
    local ridx, retry, rreset = refusal()
    res[5] = math.ceil(retry)
    res[6 + n], res[7 + n] = ridx - 1, math.ceil(rreset)
  end
  return res
end
local idx, retry, reset = refusal()
if charge ~= 0 then
  local out, ttl = {}, 0
  for j = 1, n do
    if tats[j] - now > ttl then ttl = tats[j] - now end
    out[j] = string.format('%.17g', tats[j])
  end
  redis.call('SET', KEYS[1], table.concat(out, ','), 'PX', math.ceil(ttl / 1000) + 1)
end
local res = {0, idx - 1, 0, math.ceil(reset), math.ceil(retry)}
for j = 1, n do res[5 + j] = math.ceil(tats[j] - now) end
return res
`

var takeScript = rueidis.NewLuaScript(takeLua)

// redisStore makes decisions with takeScript on a shared rueidis client.
// rueidis pipelines concurrent commands on one connection by default
// (auto-pipelining), so concurrent requests share round trips.
type redisStore struct {
	client  rueidis.Client
	prefix  string // "weir:rl:{ROUTE:FINGERPRINT:"; the key and "}" follow
	limits  []limit
	owedTTL string // ms the hash of charges is kept: twice the longest period
	// args[w] are the script arguments for want = w, built once: only the
	// key varies per request.
	args [][]string
}

func newRedisStore(client rueidis.Client, route string, cfg *config) *redisStore {
	if route == "" {
		route = "_global"
	}
	r := &redisStore{
		client: client,
		prefix: "weir:rl:{" + route + ":" + cfg.fingerprint + ":",
		limits: cfg.limits,
	}
	maxTau := int64(0)
	for _, l := range cfg.limits {
		maxTau = max(maxTau, l.tau)
	}
	r.owedTTL = strconv.FormatInt(2*maxTau/1e6+1, 10)
	maxWant := max(maxCoalesce, cfg.batch)
	r.args = make([][]string, maxWant+1)
	for w := 1; w <= maxWant; w++ {
		a := []string{strconv.Itoa(w), strconv.Itoa(len(cfg.limits))}
		for _, l := range cfg.limits {
			a = append(a,
				strconv.FormatFloat(float64(l.T)/1e3, 'g', -1, 64),
				strconv.FormatFloat(float64(l.tau)/1e3, 'g', -1, 64))
		}
		r.args[w] = a
	}
	return r
}

// scriptCall is one decision's call to takeScript (a
// redisguard.LateCall). Calls are reused (calls) once rueidis is done
// with their command: after an answer, never after an error that may
// leave the command in the pipe (rueidis does the same with its own
// command buffers).
type scriptCall struct {
	r *redisStore
	// rkey is the Redis key, a view of keyBuf (see setKey).
	rkey, owedKey string
	keyBuf        []byte
	args          []string
	// out is written by Call; take reads it when DoLate returned nil, and
	// Late when the answer came after that.
	out     [7 + maxLimits]int64
	n       int            // values in out
	fb      *fallbackStore // nil: nobody wants a late answer
	m       *routeMetrics  // counts late answers (nil in tests)
	ch      charge         // sent with the call, when charged
	charged bool
}

// Call runs the script.
func (c *scriptCall) Call(ctx context.Context) error {
	var vals []rueidis.RedisMessage
	var err error
	if c.owedKey == "" {
		vals, err = takeScript.Exec(ctx, c.r.client, []string{c.rkey}, c.args).ToArray()
	} else {
		vals, err = takeScript.Exec(ctx, c.r.client, []string{c.rkey, c.owedKey}, c.args).ToArray()
	}
	if err != nil {
		return err
	}
	if n := 5 + len(c.r.limits); len(vals) != n && len(vals) != n+2 {
		return errBadReply
	}
	c.n = len(vals)
	for i := range vals {
		if c.out[i], err = vals[i].AsInt64(); err != nil {
			return errBadReply
		}
	}
	return nil
}

// Late hands an answer that came after the request stopped waiting to the
// fallback (fallbackStore.late).
func (c *scriptCall) Late(err error) {
	if err != nil {
		return // rueidis may still hold the command: c is not reused
	}
	defer c.release()
	if c.fb == nil {
		return
	}
	if c.m != nil {
		c.m.late[min(c.out[0], 1)].Inc()
	}
	var ch *charge
	if c.charged {
		ch = &c.ch
	}
	c.fb.late([]byte(c.rkey[len(c.r.prefix):len(c.rkey)-1]), c.out[0], ch)
}

var calls = sync.Pool{New: func() any { return new(scriptCall) }}

// newCall returns a call of r for key, its Redis key set.
func (r *redisStore) newCall(key []byte) *scriptCall {
	c := calls.Get().(*scriptCall)
	c.r = r
	c.keyBuf = append(append(append(c.keyBuf[:0], r.prefix...), key...), '}')
	c.rkey = unsafe.String(unsafe.SliceData(c.keyBuf), len(c.keyBuf))
	return c
}

// release gives c back to calls; c must no longer be in use.
func (c *scriptCall) release() {
	buf := c.keyBuf
	*c = scriptCall{keyBuf: buf}
	calls.Put(c)
}

// redisKey is the Redis key for a bucket key.
func (r *redisStore) redisKey(key []byte) string {
	return r.prefix + string(key) + "}"
}

var errBadReply = errors.New("unexpected reply from the rate limit script")

// charge is what a node admitted for a key without Redis: its running
// total in an epoch (see takeScript).
type charge struct {
	node                 string
	epoch, total, credit int64
}

// lateGrace is how long a decision's call to Redis is still awaited after
// the request stopped waiting for it, to learn whether Redis granted it
// (see fallbackStore.late). A goroutine per timed-out call lives that
// long; the breaker keeps their number small.
const lateGrace = time.Second

// take runs one decision in Redis through g, within what is left of b
// (at most the configured timeout), first charging Redis with ch when not
// nil (see takeScript). On success, rel (when not nil) receives how far
// each bucket is from full, in ns. With fb (on_store_failure: local), an
// answer that comes after the request stopped waiting is given to
// fb.late and counted in m. An error means Redis did not decide
// (down, slow, refusing, or the breaker is open); the caller then applies
// on_store_failure.
func (r *redisStore) take(g *redisguard.Guard, key []byte, want, now int64, b *redisguard.Budget, ch *charge, rel *[maxLimits]int64, fb *fallbackStore, m *routeMetrics) (decision, error) {
	c := r.newCall(key)
	c.args, c.fb, c.m = r.args[want], fb, m
	if ch != nil {
		// Rare (only after decisions Redis did not make): the allocations
		// stay off the common path.
		c.owedKey = c.rkey + ":owed"
		c.args = append(c.args[:len(c.args):len(c.args)], ch.node, strconv.FormatInt(ch.epoch, 10),
			strconv.FormatInt(ch.total, 10), r.owedTTL, strconv.FormatInt(ch.credit, 10))
	}
	n := len(r.limits)
	grace := time.Duration(0)
	if fb != nil {
		// The call may still run in Redis after the request has been
		// decided without it: learn what it did.
		grace = lateGrace
		if ch != nil {
			c.ch, c.charged = *ch, true
		}
	}
	err := g.DoLate(now, b, grace, c)
	if err == redisguard.ErrOpen || err == redisguard.ErrBudget {
		c.release() // never called
		return decision{}, err
	}
	if err != nil {
		// context.DeadlineExceeded: c is Late's. Otherwise rueidis may
		// still hold its command.
		return decision{}, fmt.Errorf("rate_limit: redis decision: %w", err)
	}
	out := c.out
	if c.n == 5+n { // no partial grant: a refusal is the decision's own
		out[5+n], out[6+n] = out[1], out[3]
	}
	c.release()
	idx := int(out[1])
	if ridx := out[5+n]; idx < 0 || idx >= n || ridx < 0 || ridx >= int64(n) {
		return decision{}, errBadReply
	}
	if rel != nil {
		for j := range n {
			rel[j] = out[5+j] * 1e3
		}
	}
	return decision{
		granted:   out[0],
		idx:       idx,
		limit:     r.limits[idx].burst,
		remaining: out[2],
		reset:     out[3] * 1e3,
		retry:     out[4] * 1e3,
		rejIdx:    int(out[5+n]),
		rejReset:  out[6+n] * 1e3,
		store:     storeRedis,
	}, nil
}
