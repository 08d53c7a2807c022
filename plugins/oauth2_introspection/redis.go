package oauth2introspection

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/redis/rueidis"
)

// redisPrefix namespaces the shared cache. Keys are the hex SHA-256 of the
// token, never the token: whoever reads Redis learns nothing usable.
const redisPrefix = "weir:introspect:"

// redisCache shares introspection answers between plugin instances and
// gateway nodes. Every call is bounded by timeout; any error is reported
// to the caller, which then asks the introspection server instead.
type redisCache struct {
	client  rueidis.Client
	timeout time.Duration
}

func redisKey(key *[32]byte) string {
	var buf [len(redisPrefix) + 64]byte
	copy(buf[:], redisPrefix)
	hex.Encode(buf[len(redisPrefix):], key[:])
	return string(buf[:])
}

// get returns the cached answer, nil when there is none.
func (rc *redisCache) get(key *[32]byte, nowMs int64) (*introspection, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rc.timeout)
	defer cancel()
	b, err := rc.client.Do(ctx, rc.client.B().Get().Key(redisKey(key)).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var in introspection
	if err := json.Unmarshal(b, &in); err != nil || in.Until <= nowMs {
		// An unreadable or stale value is a miss: the server decides.
		return nil, nil
	}
	return &in, nil
}

// put stores the answer until in.Until (an absolute expiry, so every node
// agrees when it ends).
func (rc *redisCache) put(key *[32]byte, in *introspection) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), rc.timeout)
	defer cancel()
	return rc.client.Do(ctx, rc.client.B().Set().Key(redisKey(key)).Value(rueidis.BinaryString(b)).
		PxatMillisecondsTimestamp(in.Until).Build()).Error()
}
