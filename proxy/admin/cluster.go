package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// Redis keys of the cluster's shared config. The hash tag keeps both on one
// slot of a Redis Cluster.
const (
	clusterConfigKey     = "{weir}:cluster:config"
	clusterConfigChannel = "{weir}:cluster:config:changed"
)

// Cluster keeps a node's shared objects (services, routes, consumers,
// global plugins) equal to the cluster's, which Redis holds: the single
// source of truth for them while redis is configured. A node that changes
// them (admin API, file edit) stores the shared part in Redis and
// publishes a notice; every node, on a notice and whenever its
// subscription (re)starts, reads the stored config and applies it with its
// own node-local settings (listen, admin, redis, server), through the same
// validate-compile-swap path as a local change. A node whose apply fails
// keeps its running config and logs why.
type Cluster struct {
	srv    *proxy.Server
	log    *slog.Logger
	mu     *sync.Mutex // the read-modify-apply lock shared with the admin API and file reloads
	client rueidis.Client
	nodeID string
	kick   chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// NewCluster returns the cluster sync of srv, or nil when no redis is
// configured. mu serializes every read-modify-apply cycle of the process.
func NewCluster(srv *proxy.Server, mu *sync.Mutex, log *slog.Logger) *Cluster {
	client := srv.Redis()
	if client == nil {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Cluster{srv: srv, log: log, mu: mu, client: client, nodeID: hex.EncodeToString(b[:]),
		kick: make(chan struct{}, 1)}
}

// Join takes the cluster's config at start: when Redis holds one, its
// shared objects replace the file's (a warning says so when they differ);
// when it holds none, this node's seed it. A Redis that does not answer
// leaves the file's config running; the sync catches up when it answers.
func (c *Cluster) Join(ctx context.Context) {
	if err := c.pull(ctx, true); err != nil {
		c.log.Error("cluster sync: could not take the cluster's config at start; serving the file's until Redis answers",
			"error", err)
	}
}

// Publish stores the shared part of cfg in Redis and tells the other
// nodes. The caller holds the lock and has applied cfg: storing under the
// lock is what orders it with this node's pulls.
func (c *Cluster) Publish(cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.client.Do(ctx, c.client.B().Set().Key(clusterConfigKey).Value(string(marshalShared(cfg))).Build()).Error()
	if err == nil {
		err = c.client.Do(ctx, c.client.B().Publish().Channel(clusterConfigChannel).Message(c.nodeID).Build()).Error()
	}
	if err != nil {
		c.log.Error("cluster sync: could not share the change; other nodes keep their config, and this node takes the cluster's back when Redis answers",
			"error", err)
	}
	return err
}

// Start subscribes to change notices until Stop; rueidis re-subscribes
// after reconnects. Each (re)subscription reads the stored config too, so
// a change published while this node was not listening is not missed.
func (c *Cluster) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done.Add(2)
	go func() {
		defer c.done.Done()
		// Pulls run here, not in the subscription's callbacks, which
		// rueidis runs on its pipeline goroutine and must not block. A
		// burst of notices coalesces into one pull of the latest config.
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.kick:
				if err := c.pull(ctx, false); err != nil && ctx.Err() == nil {
					c.log.Error("cluster sync: reading the cluster's config", "error", err)
				}
			}
		}
	}()
	go func() {
		defer c.done.Done()
		subCtx := rueidis.WithOnSubscriptionHook(ctx, func(rueidis.PubSubSubscription) { c.poke() })
		for ctx.Err() == nil {
			err := c.client.Receive(subCtx, c.client.B().Subscribe().Channel(clusterConfigChannel).Build(),
				func(m rueidis.PubSubMessage) {
					if m.Message != c.nodeID { // not our own change
						c.poke()
					}
				})
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("cluster sync: subscription lost; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

func (c *Cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default: // a pull is pending already; it reads the latest config
	}
}

// Stop ends the subscription.
func (c *Cluster) Stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.done.Wait()
}

// pull reads the stored config and applies its shared objects with this
// node's local settings; when Redis holds none it stores this node's.
//
// The read happens under the lock: a local write applies and stores its
// config under the same lock, so a pull that reads Redis is ordered with
// it and never applies a config read before a local write on top of it.
// Every node thus ends on the config stored last.
func (c *Cluster) pull(ctx context.Context, starting bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	data, err := c.client.Do(rctx, c.client.B().Get().Key(clusterConfigKey).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		seed := string(marshalShared(c.srv.Current().Config))
		err := c.client.Do(rctx, c.client.B().Set().Key(clusterConfigKey).Value(seed).Nx().Build()).Error()
		if rueidis.IsRedisNil(err) {
			// Another node seeded first: take its config on the next pull.
			c.poke()
			return nil
		}
		if err != nil {
			return fmt.Errorf("seeding the cluster's config: %w", err)
		}
		c.log.Info("cluster sync: Redis held no config; this node's shared objects seed the cluster")
		return nil
	}
	if err != nil {
		return err
	}
	// No ${VAR} expansion: the stored config is already expanded, and a
	// literal "$" in it must stay one.
	shared, err := config.ParseEnv("redis:"+clusterConfigKey+".json", []byte(data), nil)
	if err != nil {
		return refused(err)
	}
	running := c.srv.Current().Config
	next := WithShared(running, shared)
	if SharedEqual(running, next) {
		return nil // our own change, or one applied already
	}
	if starting {
		c.log.Warn("cluster sync: the file's services, routes, consumers or plugins differ from the cluster's; the cluster's are used (change them through the admin API, or edit the file while weir runs)",
			"difference", ConfigDiff(running, next))
	}
	source := "cluster (admin change on another node)"
	if starting {
		source = "cluster (config in Redis)"
	}
	if err := c.srv.Apply(next, source); err != nil {
		return refused(err)
	}
	return nil
}

func refused(err error) error {
	var list config.ErrorList
	msg := err.Error()
	if errors.As(err, &list) {
		msgs := make([]string, len(list))
		for i, e := range list {
			msgs[i] = e.Error()
		}
		msg = strings.Join(msgs, "; ")
	}
	return fmt.Errorf("shared config refused; the running config stays: %s", msg)
}
