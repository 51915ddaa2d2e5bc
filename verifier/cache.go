package verifier

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// MaxTokenCacheEntries bounds WithTokenCache.
const MaxTokenCacheEntries = 1 << 22

// cacheShards is the number of independently locked parts of a tokenCache
// (fewer when it holds fewer entries).
const cacheShards = 16

// WithTokenCache remembers up to maxEntries tokens (1 to
// MaxTokenCacheEntries) whose signature verified, so that presenting the
// same token again skips the signature check and the claims decoding.
// Every check that can change over time still runs on every call; see
// "Verified-token cache" in the package documentation. Off by default.
//
// SECURITY: the cache is keyed by the SHA-256 of the exact token string and
// holds no raw token. A hit proves only that a byte-identical string was
// authentic under a key that the KeySource must still trust now.
func WithTokenCache(maxEntries int) Option {
	return func(v *Verifier) error {
		if maxEntries < 1 || maxEntries > MaxTokenCacheEntries {
			return fmt.Errorf("%w: token cache size must be from 1 to %d", ErrConfig, MaxTokenCacheEntries)
		}
		v.cache = newTokenCache(maxEntries)
		return nil
	}
}

// cacheEntry is what a verified token decoded to, with the key that
// verified it.
type cacheEntry struct {
	key    keys.PublicKey
	claims token.Claims
}

// tokenCache is a bounded map from the SHA-256 of a token string to its
// verified claims, in locked shards. When a shard is full an arbitrary
// entry goes (Go randomises map iteration order), after any expired entry
// met on the way; an entry past exp is also dropped when it is looked up.
// No goroutine: all work happens in the calls of Verify.
type tokenCache struct {
	n      int // shards in use: cacheShards, or maxEntries when smaller
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	limit int // entries it may hold; the limits add up to maxEntries
	m     map[[sha256.Size]byte]*cacheEntry
}

func newTokenCache(maxEntries int) *tokenCache {
	c := &tokenCache{n: min(maxEntries, cacheShards)}
	for i := range c.n {
		c.shards[i].m = make(map[[sha256.Size]byte]*cacheEntry)
		c.shards[i].limit = maxEntries / c.n
		if i < maxEntries%c.n {
			c.shards[i].limit++
		}
	}
	return c
}

func (c *tokenCache) shard(h *[sha256.Size]byte) *cacheShard {
	return &c.shards[int(h[0])%c.n]
}

// get returns the entry for h, or nil. Entries are never modified after
// insertion, so the pointer may be read without the lock.
func (c *tokenCache) get(h *[sha256.Size]byte) *cacheEntry {
	s := c.shard(h)
	s.mu.Lock()
	e := s.m[*h]
	s.mu.Unlock()
	return e
}

// put stores e under h, evicting if the shard is full; an entry is expired
// from exp + leeway.
func (c *tokenCache) put(h *[sha256.Size]byte, e *cacheEntry, now time.Time, leeway time.Duration) {
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*h]; !ok && len(s.m) >= s.limit {
		// Look at a few entries in random order and drop the expired
		// ones; if none was, drop the first looked at.
		var first [sha256.Size]byte
		n, dropped := 0, false
		for k, old := range s.m {
			if n == 0 {
				first = k
			}
			if !now.Before(old.claims.Expiry.Add(leeway)) {
				delete(s.m, k)
				dropped = true
			}
			if n++; n == 8 {
				break
			}
		}
		if !dropped {
			delete(s.m, first)
		}
	}
	s.m[*h] = e
}

// remove drops h.
func (c *tokenCache) remove(h *[sha256.Size]byte) {
	s := c.shard(h)
	s.mu.Lock()
	delete(s.m, *h)
	s.mu.Unlock()
}

// len returns the number of entries (for tests).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
