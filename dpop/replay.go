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
	// MaxEntries bounds the live entries (about 100 bytes each). When it is
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
// dropped lazily: a shard sweeps its expired entries on the first use after
// each second, so a full shard accepts again at most a second after entries
// expire. There is no background goroutine and nothing to close; an idle
// shard keeps its memory (bounded by MaxEntries) until it is used.
type MemoryReplayCache struct {
	seed     maphash.Seed
	mask     uint64
	perShard int
	shards   []memShard
}

type memShard struct {
	mu        sync.Mutex
	entries   map[ReplayKey]int64 // expiry, Unix nanoseconds
	nextSweep int64
	_         [40]byte // keep shards' locks on separate cache lines
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
	e, found := s.entries[key]
	if found && e > nowNs {
		return true, nil
	}
	// Sweep at most once per interval (and when the clock went back), so a
	// flood against a full shard costs a map lookup per proof, not a scan.
	if nowNs >= s.nextSweep || nowNs < s.nextSweep-2*sweepInterval {
		s.sweep(nowNs)
	}
	if !found && len(s.entries) >= c.perShard {
		return false, ErrReplayCacheFull
	}
	s.entries[key] = exp
	return false, nil
}

func (s *memShard) sweep(nowNs int64) {
	for k, e := range s.entries {
		if e <= nowNs {
			delete(s.entries, k)
		}
	}
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
