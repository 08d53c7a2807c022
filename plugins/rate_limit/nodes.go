package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Node learning: when `nodes` is not configured, each node writes a
// heartbeat into one sorted set (member: node id, score: Redis time in ms)
// and counts the members seen within nodesTTL. The count is what the local
// fallback divides the limit by when Redis later fails; until a count is
// learned it is 1 (the whole limit: availability over precision).

const (
	nodesKey       = "weir:rl:nodes"
	nodesTTL       = 3 * time.Second
	heartbeatEvery = time.Second
)

// heartbeatScript registers the node and returns how many are alive, on
// Redis's clock so that node clocks do not matter.
var heartbeatScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
`)

// processID distinguishes this process from other gateway nodes.
var processID = func() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// nodeID names a node: this process and the Redis client it uses. Every
// instance of the plugin in a process shares the gateway's one client, so
// they count as one node; tests that simulate two nodes in one process with
// two clients count as two.
func nodeID(client rueidis.Client) string {
	p := uintptr(0)
	if v := reflect.ValueOf(client); v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		p = v.Pointer()
	}
	return fmt.Sprintf("%s-%x", processID, p)
}

// heartbeat registers once and returns the live node count.
func heartbeat(ctx context.Context, client rueidis.Client, id string) (int64, error) {
	ms := strconv.FormatInt(nodesTTL.Milliseconds(), 10)
	return heartbeatScript.Exec(ctx, client, []string{nodesKey}, []string{id, ms}).AsInt64()
}
