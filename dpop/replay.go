package dpop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// ReplayKey identifies a proof in a replay cache: SHA-256 over the key's
// thumbprint and the jti (see [NewReplayKey]). Caches store this digest,
// never the raw jti, so their size per entry is fixed and nothing the client
// chose is written to Redis or memory verbatim. A ReplayKey also carries a
// digest of the thumbprint alone, so that a cache can bound how many
// entries one proof key holds ([MemoryReplayCache] does).
type ReplayKey struct {
	digest [sha256.Size]byte // SHA-256(domain, jkt, 0, jti)
	owner  keyOwner          // the proof key: SHA-256(domain, jkt), truncated
}

// keyOwner identifies a proof key inside the process: 128 bits of a
// SHA-256 of its thumbprint, enough that no one can make another key's
// owner collide with theirs.
type keyOwner [16]byte

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
	h.Sum(k.digest[:0])
	h.Reset()
	h.Write([]byte("hallpass dpop key v1\x00"))
	h.Write([]byte(jkt))
	var o [sha256.Size]byte
	copy(k.owner[:], h.Sum(o[:0]))
	return k
}

// String is the lowercase hex form of the proof digest, as used in Redis
// key names.
func (k ReplayKey) String() string { return hex.EncodeToString(k.digest[:]) }

// ErrReplayKeyQuota: the proof key already holds its share of a
// [MemoryReplayCache] (MemoryReplayOptions.MaxEntriesPerKey). Only that
// key's new proofs are refused, until its entries leave the window; Verify
// wraps it in [ErrReplayCheck], like ErrReplayCacheFull.
var ErrReplayKeyQuota = errors.New("dpop: too many live proofs for this key")

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
	// MaxEntries bounds the live entries (about 180 bytes each: 180 MB at
	// the default size). When it is reached, Seen returns
	// ErrReplayCacheFull until entries expire: the cache fails closed
	// (rejects new proofs) rather than forgetting proofs that could then be
	// replayed. Size it for the peak proof rate times the window (MaxAge +
	// MaxFuture). Default 1,000,000.
	MaxEntries int
	// Shards is the number of independently locked shards, rounded up to a
	// power of two. Default 64.
	Shards int
	// MaxEntriesPerKey bounds the live entries of one proof key (JWK
	// thumbprint), so that one device cannot fill the cache: past it, Seen
	// refuses that key's new proofs with ErrReplayKeyQuota (fails closed
	// for that key only) while every other key goes on. It is enforced in
	// each shard, as MaxEntriesPerKey / shards (rounded down, at least 1)
	// entries of the key per shard; proofs spread evenly over the shards
	// (keyed hash), so a key meets it after about MaxEntriesPerKey proofs.
	// Default MaxEntries / 100, 1% of the cache: at the default size
	// 10,000, that is 156 per shard in 64 shards, 9,984 in all, about 150
	// proofs/s sustained over the 65 s window, far above what one device
	// sends; filling the cache then takes at least 100 keys. A client that
	// legitimately sends more with one key (a server-side client), or a
	// smaller MaxEntries, needs a larger value: its proofs per second times
	// the window. NoPerKeyLimit turns the bound off.
	MaxEntriesPerKey int
}

// NoPerKeyLimit as MemoryReplayOptions.MaxEntriesPerKey lets one proof key
// hold any number of entries, up to the whole cache (benchmarks that
// verify many proofs of one key need it).
const NoPerKeyLimit = -1

// MemoryReplayCache is an in-process ReplayCache. It protects one node only:
// in a cluster, a proof replayed to another node is not caught (use
// redisreplay for a cluster-wide guarantee).
//
// It is sharded by a keyed hash with a per-process random seed, so clients
// cannot aim their proofs at one shard to fill it. Inside each shard, one
// proof key holds at most its quota (MemoryReplayOptions.MaxEntriesPerKey),
// so a device that floods the cache with proofs is refused once it holds
// 1% of it, and the other devices' proofs go on being accepted. The quota
// stops one key, not an attacker with many keys: where a proof key must
// match a token's or a session's (checked before the replay cache), each
// new key costs an account, and the issuer's endpoints that take a proof of
// a key not bound yet (signup, link, recovery) are rate limited per client
// address. Expired entries are
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
	perKey   int // per shard; 0: no limit
	shards   []memShard
}

type memShard struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]entry
	keys    map[keyOwner]int // entries held per proof key; no zero counts
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
	_         [64]byte // keep shards' locks on separate cache lines
}

type entry struct {
	exp   int64 // expiry, Unix nanoseconds
	owner keyOwner
}

type queued struct {
	key [sha256.Size]byte
	exp int64
}

const sweepInterval = int64(time.Second)

// NewMemoryReplayCache returns an empty cache.
func NewMemoryReplayCache(opts MemoryReplayOptions) (*MemoryReplayCache, error) {
	if opts.MaxEntries < 0 || opts.Shards < 0 || opts.MaxEntriesPerKey < NoPerKeyLimit {
		return nil, fmt.Errorf("%w: negative replay cache size", ErrConfig)
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = 1_000_000
	}
	if opts.Shards == 0 {
		opts.Shards = 64
	}
	if opts.MaxEntriesPerKey == 0 {
		opts.MaxEntriesPerKey = opts.MaxEntries / 100
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
	if opts.MaxEntriesPerKey != NoPerKeyLimit {
		c.perKey = max(1, opts.MaxEntriesPerKey/n)
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]entry)
		c.shards[i].keys = make(map[keyOwner]int)
	}
	return c, nil
}

func (c *MemoryReplayCache) shard(key ReplayKey) *memShard {
	return &c.shards[maphash.Bytes(c.seed, key.digest[:])&c.mask]
}

// Seen implements ReplayCache. Besides ErrReplayCacheFull, it returns
// ErrReplayKeyQuota for a new proof of a key that holds its quota; a
// replay of a proof it holds is reported as seen either way.
func (c *MemoryReplayCache) Seen(ctx context.Context, key ReplayKey, now, expiresAt time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s := c.shard(key)
	nowNs, exp := now.UnixNano(), expiresAt.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.popExpired(nowNs)
	e, found := s.entries[key.digest]
	if found && e.exp > nowNs {
		return true, nil
	}
	if !found {
		// A shard or a key at its bound first reclaims stragglers
		// (rate-limited, so a flood against a full shard or from a key
		// over its quota costs a lookup per proof, not a scan).
		full := len(s.entries) >= c.perShard
		overQuota := c.perKey > 0 && s.keys[key.owner] >= c.perKey
		if (full || overQuota) && (nowNs >= s.nextSweep || nowNs < s.nextSweep-2*sweepInterval) {
			s.sweep(nowNs)
		}
		if c.perKey > 0 && s.keys[key.owner] >= c.perKey {
			return false, ErrReplayKeyQuota
		}
		if len(s.entries) >= c.perShard {
			return false, ErrReplayCacheFull
		}
		s.keys[key.owner]++
	}
	// An expired entry still held (found) is the same proof, hence the
	// same key: it is renewed in place and its key's count stays.
	s.entries[key.digest] = entry{exp: exp, owner: key.owner}
	s.queue = append(s.queue, queued{key: key.digest, exp: exp})
	return false, nil
}

// popExpired drops expired entries from the head of the queue.
func (s *memShard) popExpired(nowNs int64) {
	for s.head < len(s.queue) && s.queue[s.head].exp <= nowNs {
		q := s.queue[s.head]
		// The key may have been stored again since (after expiring):
		// only the entry this record describes is dropped.
		if e, ok := s.entries[q.key]; ok && e.exp == q.exp {
			s.drop(q.key, e.owner)
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
		case ok && e.exp == q.exp && e.exp <= nowNs:
			s.drop(q.key, e.owner)
		case ok && e.exp == q.exp:
			live = append(live, q)
		}
	}
	clear(s.queue[len(live):])
	s.queue, s.head = live, 0
	s.nextSweep = nowNs + sweepInterval
}

// drop deletes an entry and counts it off its key.
func (s *memShard) drop(key [sha256.Size]byte, owner keyOwner) {
	delete(s.entries, key)
	if n := s.keys[owner] - 1; n > 0 {
		s.keys[owner] = n
	} else {
		delete(s.keys, owner)
	}
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
