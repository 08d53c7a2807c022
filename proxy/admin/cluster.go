package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/weirgw/weir/proxy/config"
)

// Redis keys of the cluster's shared config. The hash tag keeps both on one
// slot of a Redis Cluster.
const (
	clusterConfigKey     = "{weir}:cluster:config"
	clusterConfigChannel = "{weir}:cluster:config:changed"
)

// clusterSync shares admin changes between the nodes of a cluster: the
// node that applied a change stores the whole config in Redis and
// publishes a notice; every other node reads it and applies it through the
// same validate-compile-swap path as a local change. A node whose apply
// fails keeps its running config and logs why.
type clusterSync struct {
	a      *Admin
	client rueidis.Client
	nodeID string
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func newClusterSync(a *Admin, client rueidis.Client) *clusterSync {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &clusterSync{a: a, client: client, nodeID: hex.EncodeToString(b[:])}
}

// publish stores cfg and tells the other nodes.
func (cs *clusterSync) publish(cfg *config.Config) {
	data, err := config.Marshal(cfg)
	if err != nil {
		cs.a.opts.Log.Error("cluster sync: marshal config", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := cs.client
	err = c.Do(ctx, c.B().Set().Key(clusterConfigKey).Value(string(data)).Build()).Error()
	if err == nil {
		err = c.Do(ctx, c.B().Publish().Channel(clusterConfigChannel).Message(cs.nodeID).Build()).Error()
	}
	if err != nil {
		cs.a.opts.Log.Error("cluster sync: could not share the admin change; other nodes keep their config", "error", err)
	}
}

// run subscribes until stop; rueidis re-subscribes after reconnects.
func (cs *clusterSync) run() {
	ctx, cancel := context.WithCancel(context.Background())
	cs.cancel = cancel
	cs.done.Add(1)
	go func() {
		defer cs.done.Done()
		for ctx.Err() == nil {
			err := cs.client.Receive(ctx, cs.client.B().Subscribe().Channel(clusterConfigChannel).Build(),
				func(m rueidis.PubSubMessage) {
					if m.Message == cs.nodeID {
						return // our own change
					}
					cs.pull(ctx)
				})
			if ctx.Err() != nil {
				return
			}
			cs.a.opts.Log.Warn("cluster sync: subscription lost; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
}

func (cs *clusterSync) pull(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	data, err := cs.client.Do(rctx, cs.client.B().Get().Key(clusterConfigKey).Build()).ToString()
	if err != nil {
		cs.a.opts.Log.Error("cluster sync: read shared config", "error", err)
		return
	}
	// No ${VAR} expansion: the stored config is already expanded, and a
	// literal "$" in it must stay one.
	cfg, err := config.ParseEnv("redis:"+clusterConfigKey+".json", []byte(data), nil)
	if err == nil {
		cs.a.mu.Lock()
		err = cs.a.srv.Apply(cfg, "cluster (admin change on another node)")
		cs.a.mu.Unlock()
	}
	if err != nil {
		cs.a.opts.Log.Error("cluster sync: shared config refused; the running config stays",
			"error", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
}

func (cs *clusterSync) stop() {
	if cs.cancel != nil {
		cs.cancel()
	}
	cs.done.Wait()
}

// publishChange shares an admin change with the other nodes of a cluster.
// Without redis the change stays local to this process.
func publishChange(a *Admin, cfg *config.Config) {
	if a.sync != nil {
		a.sync.publish(cfg)
	}
}
