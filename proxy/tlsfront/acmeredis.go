package tlsfront

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/rueidis"
)

// Redis keys of the ACME storage. Every key of certmagic's storage is a
// field of two hashes (its value, its modification time), so List and
// Stat are one HKEYS away and all of it lives in one cluster slot; the
// data is a few kilobytes per certificate.
const (
	acmeDataKey  = "{weir}:acme:data"
	acmeMtimeKey = "{weir}:acme:mtime"
	acmeLockKey  = "{weir}:acme:lock:"
)

// acmeLockTTL is how long a lock outlives a node that died holding it; a
// live holder extends it every third of that.
const acmeLockTTL = time.Minute

// RedisStorage is certmagic's storage over the cluster's Redis: nodes
// share the ACME account, keys and certificates, and its locks make one
// node order a certificate while the others wait for it and then load it.
type RedisStorage struct {
	c     rueidis.Client
	mu    sync.Mutex
	held  map[string]heldLock
	retry time.Duration
}

type heldLock struct {
	token string
	stop  chan struct{}
}

// NewRedisStorage makes the storage on client c.
func NewRedisStorage(c rueidis.Client) *RedisStorage {
	return &RedisStorage{c: c, held: map[string]heldLock{}, retry: 250 * time.Millisecond}
}

var _ certmagic.Storage = (*RedisStorage)(nil)

// Store sets key's value and modification time in one transaction.
func (s *RedisStorage) Store(ctx context.Context, key string, value []byte) error {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	cmds := rueidis.Commands{
		s.c.B().Multi().Build(),
		s.c.B().Hset().Key(acmeDataKey).FieldValue().FieldValue(key, rueidis.BinaryString(value)).Build(),
		s.c.B().Hset().Key(acmeMtimeKey).FieldValue().FieldValue(key, now).Build(),
		s.c.B().Exec().Build(),
	}
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("storing acme %s in redis: %w", key, err)
		}
	}
	return nil
}

// Load returns key's value, fs.ErrNotExist when there is none.
func (s *RedisStorage) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Do(ctx, s.c.B().Hget().Key(acmeDataKey).Field(key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("loading acme %s from redis: %w", key, err)
	}
	return b, nil
}

// Delete removes key and every key under it, as FileStorage removes a
// directory.
func (s *RedisStorage) Delete(ctx context.Context, key string) error {
	keys, err := s.keys(ctx)
	if err != nil {
		return err
	}
	var del []string
	for _, k := range keys {
		if k == key || strings.HasPrefix(k, key+"/") {
			del = append(del, k)
		}
	}
	if len(del) == 0 {
		return fs.ErrNotExist
	}
	for _, h := range []string{acmeDataKey, acmeMtimeKey} {
		if err := s.c.Do(ctx, s.c.B().Hdel().Key(h).Field(del...).Build()).Error(); err != nil {
			return fmt.Errorf("deleting acme %s from redis: %w", key, err)
		}
	}
	return nil
}

// Exists reports whether key is a value or has values under it.
func (s *RedisStorage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys under path: all of them when recursive, else its
// immediate children (values and "directories").
func (s *RedisStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(path, "/") + "/"
	if path == "" {
		prefix = ""
	}
	var out []string
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		if !recursive {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				rest = rest[:i]
			}
		}
		if name := prefix + rest; !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fs.ErrNotExist
	}
	return out, nil
}

// Stat describes key: a value with its size and time, or a "directory"
// when other keys are under it.
func (s *RedisStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	rs := s.c.DoMulti(ctx,
		s.c.B().Hstrlen().Key(acmeDataKey).Field(key).Build(),
		s.c.B().Hget().Key(acmeMtimeKey).Field(key).Build())
	size, err := rs[0].AsInt64()
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("stat of acme %s in redis: %w", key, err)
	}
	if mt, err := rs[1].AsInt64(); err == nil {
		return certmagic.KeyInfo{Key: key, Size: size, Modified: time.Unix(0, mt), IsTerminal: true}, nil
	}
	keys, err := s.keys(ctx)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	for _, k := range keys {
		if strings.HasPrefix(k, strings.TrimSuffix(key, "/")+"/") {
			return certmagic.KeyInfo{Key: key}, nil
		}
	}
	return certmagic.KeyInfo{}, fs.ErrNotExist
}

func (s *RedisStorage) keys(ctx context.Context) ([]string, error) {
	keys, err := s.c.Do(ctx, s.c.B().Hkeys().Key(acmeDataKey).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("listing acme keys in redis: %w", err)
	}
	return keys, nil
}

// Lock takes the cluster-wide lock name (SET NX PX with a random token),
// waiting while another node holds it, and keeps extending it until
// Unlock.
func (s *RedisStorage) Lock(ctx context.Context, name string) error {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := acmeLockKey + name
	for {
		err := s.c.Do(ctx, s.c.B().Set().Key(key).Value(token).Nx().Px(acmeLockTTL).Build()).Error()
		if err == nil {
			break
		}
		if !rueidis.IsRedisNil(err) {
			return fmt.Errorf("taking acme lock %s in redis: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.retry):
		}
	}
	h := heldLock{token: token, stop: make(chan struct{})}
	s.mu.Lock()
	s.held[name] = h
	s.mu.Unlock()
	go s.extend(key, h)
	return nil
}

var extendScript = rueidis.NewLuaScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

var unlockScript = rueidis.NewLuaScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// extend keeps a held lock alive: an order can outlast the TTL, and the
// TTL is what frees the lock of a node that died.
func (s *RedisStorage) extend(key string, h heldLock) {
	t := time.NewTicker(acmeLockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			extendScript.Exec(ctx, s.c, []string{key}, []string{h.token, strconv.FormatInt(acmeLockTTL.Milliseconds(), 10)})
			cancel()
		}
	}
}

// Unlock releases name if this process still holds it.
func (s *RedisStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("acme lock %s is not held", name)
	}
	close(h.stop)
	if err := unlockScript.Exec(ctx, s.c, []string{acmeLockKey + name}, []string{h.token}).Error(); err != nil {
		return fmt.Errorf("releasing acme lock %s in redis: %w", name, err)
	}
	return nil
}
