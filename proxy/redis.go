package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/proxy/config"
)

func redisKey(cfg *config.Config) string {
	r := cfg.Redis
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%s|%s|%s|%d|%s|%s", strings.Join(r.Addrs, ","), r.Username, r.Password, r.DB, r.MasterSet, r.FlushDelay.D())
}

// dialRedis connects to Redis over a fusedio.RawConn: rueidis reads and
// writes its pipeline on two goroutines of its own, and through a plain
// net.Conn their system calls kept extra threads busy beside the serving
// one (9 µs of CPU per rate-limited request at GOMAXPROCS=1).
func dialRedis(ctx context.Context, dst string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", dst)
	if err != nil {
		return nil, err
	}
	return fusedio.NewRaw(c), nil
}

// setRedis builds the shared rueidis client for cfg.redis (nil when absent).
// Connecting is lazy and does not fail the start: a Redis that is down
// degrades each feature as its config says (on_store_failure ...).
func (s *Server) setRedis(cfg *config.Config) error {
	key := redisKey(cfg)
	if key == s.redisKey && (s.redis != nil || key == "") {
		return nil
	}
	s.redisKey = key
	if cfg.Redis == nil {
		s.redis = nil
		return nil
	}
	r := cfg.Redis
	c, err := rueidis.NewClient(RedisClientOption(r))
	if err != nil {
		if c == nil {
			return fmt.Errorf("redis %s: %w", strings.Join(r.Addrs, ","), err)
		}
		// ForceSingleClient returns a usable client even when the first
		// dial fails: it reconnects on use. A Redis that is down at start
		// must not stop the gateway; each feature degrades per its config.
		s.log.Warn("redis is not reachable yet; features using it degrade until it is", "addrs", r.Addrs, "error", err)
	}
	s.redis = c
	return nil
}

// RedisClientOption is the rueidis option of the gateway's client for the
// `redis` section r; tools (weir key-auth) connect with it too.
func RedisClientOption(r *config.Redis) rueidis.ClientOption {
	opt := rueidis.ClientOption{
		InitAddress:       r.Addrs,
		Username:          r.Username,
		Password:          r.Password,
		SelectDB:          r.DB,
		ConnWriteTimeout:  time.Second,
		Dialer:            net.Dialer{Timeout: 2 * time.Second},
		DisableRetry:      true,
		ForceSingleClient: len(r.Addrs) == 1 && r.MasterSet == "",
		MaxFlushDelay:     r.FlushDelay.D(),
		DialCtxFn:         dialRedis,
	}
	if r.MasterSet != "" {
		opt.Sentinel = rueidis.SentinelOption{MasterSet: r.MasterSet}
	}
	return opt
}
