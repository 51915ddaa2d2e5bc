// Package redisreplay is a dpop.ReplayCache in Redis, shared by every node of
// a cluster: a proof accepted by one node is a replay on all the others.
//
// Each check is one atomic command, SET key 1 NX PX ttl: of any number of
// concurrent checks of the same proof, on any nodes, exactly one sets the key
// and wins. Checks go through internal/redispipe, so the checks of
// concurrent requests share one round trip; each still waits for its own
// reply under its own deadline. The key is the dpop.ReplayKey digest (SHA-256 over the proof
// key's thumbprint and the jti), so Redis never holds a client-chosen value,
// and every entry has the same small size. The TTL is the time from the
// verifier's clock reading to the end of the proof's acceptance window
// (dpop.Verify passes both), never a fixed duration.
//
// Key names are "hallpass:{dpop}:jti:<64 hex digits>" by default. The hash
// tag {dpop} keeps every replay key in one Redis Cluster slot, like the other
// dpop keys, so they can be scripted together; the cost is that one shard
// takes all replay writes (one small SET per request, well within a single
// Redis node's capacity). Options.KeyPrefix changes it, for example to
// "hallpass:dpop:jti:" to spread the keys over the cluster.
//
// What it trusts: the Redis server and the network path to it (use TLS and
// ACLs limiting the client to the key prefix). Failure is closed: when Redis
// cannot answer, or answers the SET with anything but OK (set) or nil
// (already there), Seen returns an error and dpop.Verify rejects the proof
// with dpop.ErrReplayCheck (a server error, not a verdict on the proof).
// A SET whose reply is lost may have been applied: the same proof is then a
// replay on retry, and the client must make a new proof, as it should anyway.
//
// Several nodes: a deployment with more than one node behind one public URL
// must use this cache (or another shared one). dpop.MemoryReplayCache
// protects one process only: a proof accepted by one node could be replayed
// to another within its window.
//
// No per-key quota: unlike dpop.MemoryReplayCache, this cache does not
// bound what one proof key holds. An entry is one key (an 84-byte name
// with a TTL) for 65 s, so a Redis sized for the deployment takes far more
// proofs to fill than one node's memory cache: a single client would need
// a sustained request flood, which is for the HTTP layer's limits to stop.
// Size Redis for the peak proof rate times the window and keep a maxmemory
// policy that never evicts these keys (noeviction: a full Redis fails
// closed, like the memory cache; a volatile-* or allkeys-* policy would
// forget proofs, which could then be replayed).
//
// Limits: Redis replication is asynchronous. If the primary fails after
// acknowledging a SET and before a replica received it, the promoted replica
// does not know the proof and a replay within the window would pass; use
// WAIT, or accept this window of a few milliseconds.
package redisreplay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/redispipe"
	"github.com/redis/go-redis/v9"
)

// DefaultKeyPrefix is the default Redis key prefix.
const DefaultKeyPrefix = "hallpass:{dpop}:jti:"

// Options configures a Cache. The zero value is usable.
type Options struct {
	// KeyPrefix is prepended to the hex digest. Default DefaultKeyPrefix.
	KeyPrefix string
}

// Cache is a dpop.ReplayCache backed by Redis. It is safe for concurrent
// use and holds no goroutines of its own; closing the client is the
// caller's job.
type Cache struct {
	client redis.UniversalClient
	q      *redispipe.Pipe
	prefix string
}

var _ dpop.ReplayCache = (*Cache)(nil)

// New returns a Cache using client, which may be a single-node, Sentinel or
// Cluster client.
func New(client redis.UniversalClient, opts Options) (*Cache, error) {
	if client == nil {
		return nil, errors.New("redisreplay: nil client")
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(prefix, " \r\n") {
		return nil, errors.New("redisreplay: key prefix contains white space")
	}
	q, err := redispipe.New(client)
	if err != nil {
		return nil, fmt.Errorf("redisreplay: %w", err)
	}
	return &Cache{client: client, q: q, prefix: prefix}, nil
}

// minTTL is the smallest TTL sent: PX 0 is an error in Redis, and a proof
// whose window ends now is still accepted at this instant.
const minTTL = time.Millisecond

// Seen implements dpop.ReplayCache with SET key 1 NX PX ttl.
func (c *Cache) Seen(ctx context.Context, key dpop.ReplayKey, now, expiresAt time.Time) (bool, error) {
	ttl := expiresAt.Sub(now)
	if ttl < minTTL {
		ttl = minTTL
	}
	ms := (ttl + time.Millisecond - 1) / time.Millisecond // round up
	// Through the pipe: the checks of concurrent requests share a round trip.
	reply, err := c.q.Cmd(ctx, "set", c.Key(key), "1", "NX", "PX", int64(ms)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return true, nil // NX refused: already there
	case err != nil:
		return false, fmt.Errorf("redisreplay: %w", err)
	case reply != "OK":
		// Only OK says the key was set; anything else (QUEUED from a
		// connection inside MULTI, a proxy's answer) leaves it unknown.
		return false, errOddReply
	}
	return false, nil // the key was set: first use
}

// errOddReply does not carry the reply: what answered is not trusted.
var errOddReply = errors.New("redisreplay: SET NX answered neither OK nor nil")

// Key returns the Redis key name for key.
func (c *Cache) Key(key dpop.ReplayKey) string {
	return c.prefix + key.String()
}
