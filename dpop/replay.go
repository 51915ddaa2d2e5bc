package dpop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// ReplayKey identifies a proof in a replay cache: SHA-256 over the key's
// thumbprint and the jti (see [NewReplayKey]). Caches store this digest,
// never the raw jti, so their size per entry is fixed and nothing the client
// chose is written to Redis or memory verbatim.
type ReplayKey [sha256.Size]byte

// NewReplayKey derives the cache key of the proof with thumbprint jkt and
// the given jti. Scoping by key means one client cannot burn another's jti;
// a replay is always the same proof, hence the same key.
func NewReplayKey(jkt, jti string) ReplayKey {
	h := sha256.New()
	h.Write([]byte("hallpass dpop jti v1\x00"))
	h.Write([]byte(jkt)) // fixed length (43), so the encoding is unambiguous
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k ReplayKey
	h.Sum(k[:0])
	return k
}

// String is the lowercase hex form, as used in Redis key names.
func (k ReplayKey) String() string { return hex.EncodeToString(k[:]) }

// ReplayCache remembers proofs until they leave the acceptance window.
//
// Seen atomically records key until expiresAt and reports whether it was
// already recorded (and not yet expired): of any number of concurrent calls
// with the same key, across all nodes sharing the cache, exactly one returns
// false. now is the verifier's clock reading for this check; implementations
// measure the time to live from it (expiresAt - now) rather than from a
// clock of their own. An error means no answer: Verify then rejects the
// proof (fails closed).
type ReplayCache interface {
	Seen(ctx context.Context, key ReplayKey, now, expiresAt time.Time) (alreadySeen bool, err error)
}

// MemoryReplayOptions configures a MemoryReplayCache. The zero value is
// usable.
type MemoryReplayOptions struct {
	// MaxEntries bounds the live entries (about 150 bytes each). When it is
	// reached, Seen returns ErrReplayCacheFull until entries expire: the
	// cache fails closed (rejects new proofs) rather than forgetting proofs
	// that could then be replayed. Size it for the peak proof rate times the
	// window (MaxAge + MaxFuture). Default 1,000,000.
	MaxEntries int
	// Shards is the number of independently locked shards, rounded up to a
	// power of two. Default 64.
	Shards int
}

// MemoryReplayCache is an in-process ReplayCache. It protects one node only:
// in a cluster, a proof replayed to another node is not caught (use
// redisreplay for a cluster-wide guarantee).
//
// It is sharded by a keyed hash with a per-process random seed, so clients
// cannot aim their proofs at one shard to fill it. Expired entries are
// dropped lazily, by the next check that lands in their shard, in O(1)
// amortised time per check; a full shard reclaims every expired entry before
// it refuses a proof. There is no background goroutine and nothing to
// close; an idle shard keeps its memory (bounded by MaxEntries) until used.
//
// An entry dropped at some clock reading is gone: if the clock then steps
// back by more than Options.MaxFuture (the margin Verify adds to every
// entry), a proof whose entry was dropped could be accepted again while the
// clock catches up. Keep node clocks disciplined (NTP slews, it does not
// step, in normal operation).
type MemoryReplayCache struct {
	seed     maphash.Seed
	mask     uint64
	perShard int
	shards   []memShard
}

type memShard struct {
	mu      sync.Mutex
	entries map[ReplayKey]int64 // expiry, Unix nanoseconds
	// queue holds entries in insertion order; expiries are nearly in that
	// order (they differ by the spread of iat, at most the window), so
	// popping expired entries from its head drops almost everything on
	// time at O(1) amortised cost per check. An entry stuck behind a
	// later-expiring head waits at most one window longer; a full sweep,
	// at most once per second and only when the shard is full, reclaims
	// such stragglers before the shard refuses new proofs.
	queue     []queued
	head      int
	nextSweep int64
	_         [40]byte // keep shards' locks on separate cache lines
}

type queued struct {
	key ReplayKey
	exp int64
}

const sweepInterval = int64(time.Second)

// NewMemoryReplayCache returns an empty cache.
func NewMemoryReplayCache(opts MemoryReplayOptions) (*MemoryReplayCache, error) {
	if opts.MaxEntries < 0 || opts.Shards < 0 {
		return nil, fmt.Errorf("%w: negative replay cache size", ErrConfig)
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = 1_000_000
	}
	if opts.Shards == 0 {
		opts.Shards = 64
	}
	n := 1
	for n < opts.Shards && n < 1<<16 {
		n <<= 1
	}
	for n > 1 && opts.MaxEntries/n < 1 {
		n >>= 1
	}
	c := &MemoryReplayCache{
		seed:     maphash.MakeSeed(),
		mask:     uint64(n - 1),
		perShard: opts.MaxEntries / n,
		shards:   make([]memShard, n),
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[ReplayKey]int64)
	}
	return c, nil
}

// Seen implements ReplayCache.
func (c *MemoryReplayCache) Seen(ctx context.Context, key ReplayKey, now, expiresAt time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s := &c.shards[maphash.Bytes(c.seed, key[:])&c.mask]
	nowNs, exp := now.UnixNano(), expiresAt.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.popExpired(nowNs)
	e, found := s.entries[key]
	if found && e > nowNs {
		return true, nil
	}
	if !found && len(s.entries) >= c.perShard {
		// Before refusing, reclaim stragglers (rate-limited, so a flood
		// against a full shard costs a lookup per proof, not a scan).
		if nowNs >= s.nextSweep || nowNs < s.nextSweep-2*sweepInterval {
			s.sweep(nowNs)
		}
		if len(s.entries) >= c.perShard {
			return false, ErrReplayCacheFull
		}
	}
	s.entries[key] = exp
	s.queue = append(s.queue, queued{key: key, exp: exp})
	return false, nil
}

// popExpired drops expired entries from the head of the queue.
func (s *memShard) popExpired(nowNs int64) {
	for s.head < len(s.queue) && s.queue[s.head].exp <= nowNs {
		q := s.queue[s.head]
		// The key may have been stored again since (after expiring):
		// only the entry this record describes is dropped.
		if e, ok := s.entries[q.key]; ok && e == q.exp {
			delete(s.entries, q.key)
		}
		s.queue[s.head] = queued{}
		s.head++
	}
	// Reuse the slice's space once half of it is consumed.
	if s.head > 64 && s.head*2 >= len(s.queue) {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.head = 0
	}
}

// sweep drops every expired entry, wherever it is in the queue.
func (s *memShard) sweep(nowNs int64) {
	live := s.queue[:0]
	for _, q := range s.queue[s.head:] {
		e, ok := s.entries[q.key]
		switch {
		case ok && e == q.exp && e <= nowNs:
			delete(s.entries, q.key)
		case ok && e == q.exp:
			live = append(live, q)
		}
	}
	clear(s.queue[len(live):])
	s.queue, s.head = live, 0
	s.nextSweep = nowNs + sweepInterval
}

// Len returns the number of entries held, expired or not.
func (c *MemoryReplayCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
