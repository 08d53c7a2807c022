package tlsfront

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// TicketKeysKey is the Redis hash that holds the cluster's session ticket
// keys: field = the rotation period's number, value = the key in hex.
const TicketKeysKey = "{weir}:tls:ticket_keys"

// DefaultTicketRotation is how long one session ticket key encrypts new
// tickets. A ticket stays good for two periods after the key that made it
// retires (the previous key is kept for decryption), within Go's own
// seven-day ticket lifetime.
const DefaultTicketRotation = time.Hour

// TicketKeys rotates the session ticket keys of every TLS listener of the
// process. The key of a period is derived from nothing: it is random,
// made by the first node that needs it. With Redis the first node stores
// it with HSETNX and every node reads the same one, so a session started
// on one node resumes on another; without Redis it stays in the process.
//
// A tls.Config uses the first key it is given to encrypt and all of them
// to decrypt: the current period's first, then the previous one (tickets
// issued before the rotation) and the next one (tickets from a node whose
// clock already passed the rotation).
type TicketKeys struct {
	redis  rueidis.Client
	log    *slog.Logger
	period time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cfgs  []*tls.Config
	local map[int64][32]byte
	keys  [][32]byte
}

// NewTicketKeys makes the rotation; redis may be nil.
func NewTicketKeys(redis rueidis.Client, log *slog.Logger) *TicketKeys {
	if log == nil {
		log = slog.Default()
	}
	return &TicketKeys{redis: redis, log: log, period: DefaultTicketRotation, now: time.Now, local: map[int64][32]byte{}}
}

// Register makes cfg use the rotated keys.
func (t *TicketKeys) Register(cfg *tls.Config) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfgs = append(t.cfgs, cfg)
	if t.keys != nil {
		cfg.SetSessionTicketKeys(t.keys)
	}
}

// Refresh takes the keys of the current period and its neighbours (from
// Redis when configured, else from the process) and hands them to every
// registered config. When Redis fails, the keys in use stay; a process
// that has none yet uses keys of its own, so TLS works without Redis,
// only without resumption across nodes.
func (t *TicketKeys) Refresh(ctx context.Context) {
	e := t.now().UnixNano() / int64(t.period)
	epochs := []int64{e, e - 1, e + 1}
	var keys [][32]byte
	if t.redis != nil {
		var err error
		if keys, err = t.fromRedis(ctx, epochs); err != nil {
			t.log.Warn("tls session ticket keys: redis failed; keys stay per node until it answers", "error", err.Error())
			keys = nil
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if keys == nil {
		if t.redis != nil && t.keys != nil {
			return
		}
		for _, ep := range epochs {
			k, ok := t.local[ep]
			if !ok {
				_, _ = rand.Read(k[:])
				t.local[ep] = k
			}
			keys = append(keys, k)
		}
		for ep := range t.local {
			if ep < e-1 {
				delete(t.local, ep)
			}
		}
	}
	t.keys = keys
	for _, c := range t.cfgs {
		c.SetSessionTicketKeys(keys)
	}
}

func (t *TicketKeys) fromRedis(ctx context.Context, epochs []int64) ([][32]byte, error) {
	c := t.redis
	fields := make([]string, len(epochs))
	for i, ep := range epochs {
		fields[i] = strconv.FormatInt(ep, 10)
	}
	cmds := make(rueidis.Commands, 0, 4)
	for _, f := range []string{fields[0], fields[2]} {
		var k [32]byte
		_, _ = rand.Read(k[:])
		cmds = append(cmds, c.B().Hsetnx().Key(TicketKeysKey).Field(f).Value(hex.EncodeToString(k[:])).Build())
	}
	cmds = append(cmds, c.B().Hmget().Key(TicketKeysKey).Field(fields...).Build())
	res := c.DoMulti(ctx, cmds...)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return nil, err
		}
	}
	vals, err := res[len(res)-1].AsStrSlice()
	if err != nil {
		return nil, err
	}
	var keys [][32]byte
	for _, v := range vals {
		b, err := hex.DecodeString(v)
		if v == "" || err != nil || len(b) != 32 {
			continue // the previous period's key may be gone: skip it
		}
		keys = append(keys, [32]byte(b))
	}
	if len(keys) == 0 {
		return nil, errNoKeys
	}
	// Drop the fields of periods no node uses any more.
	if names, err := c.Do(ctx, c.B().Hkeys().Key(TicketKeysKey).Build()).AsStrSlice(); err == nil {
		var old []string
		for _, n := range names {
			if ep, err := strconv.ParseInt(n, 10, 64); err != nil || ep < epochs[1] {
				old = append(old, n)
			}
		}
		if len(old) > 0 {
			_ = c.Do(ctx, c.B().Hdel().Key(TicketKeysKey).Field(old...).Build()).Error()
		}
	}
	return keys, nil
}

// Run refreshes the keys until stop closes, often enough that every node
// switches within a few minutes of a period's start.
func (t *TicketKeys) Run(stop <-chan struct{}) {
	tick := time.NewTicker(min(t.period/12, 5*time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			t.Refresh(ctx)
			cancel()
		}
	}
}
