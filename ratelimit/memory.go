package ratelimit

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxKeys bounds a Memory limiter when MemoryOptions.MaxKeys is 0.
const DefaultMaxKeys = 100_000

const (
	shards = 16
	// evictSample entries are looked at to make room for a new key.
	evictSample = 32
	// maxKeyLen: longer keys are kept as their SHA-256, so memory per key
	// stays bounded whatever the caller passes.
	maxKeyLen = 64
)

// MemoryOptions configure NewMemory. The zero value is useful.
type MemoryOptions struct {
	// MaxKeys bounds the number of keys held (default DefaultMaxKeys).
	MaxKeys int
}

// Memory is an in-process Limiter. It starts no goroutine.
type Memory struct {
	seed     maphash.Seed
	perShard int
	shards   [shards]memShard
}

type memKey struct {
	limit int
	per   time.Duration
	key   string
}

type memShard struct {
	mu  sync.Mutex
	tat map[memKey]int64 // theoretical arrival time, Unix nanoseconds
}

// NewMemory returns an empty in-memory limiter.
func NewMemory(opts MemoryOptions) (*Memory, error) {
	if opts.MaxKeys < 0 {
		return nil, errors.New("ratelimit: negative MaxKeys")
	}
	if opts.MaxKeys == 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	m := &Memory{seed: maphash.MakeSeed(), perShard: max(1, (opts.MaxKeys+shards-1)/shards)}
	for i := range m.shards {
		m.shards[i].tat = make(map[memKey]int64)
	}
	return m, nil
}

var (
	_ Limiter = (*Memory)(nil)
	_ Peeker  = (*Memory)(nil)
)

// Allow counts one request under key against rule at now, if it fits. It
// never returns ErrUnavailable; ctx is not used.
func (m *Memory) Allow(_ context.Context, key string, rule Rule, now time.Time) (Decision, error) {
	return m.decide(key, rule, now, true)
}

// Peek returns the decision Allow would make and counts nothing. It never
// returns ErrUnavailable; ctx is not used.
func (m *Memory) Peek(_ context.Context, key string, rule Rule, now time.Time) (Decision, error) {
	return m.decide(key, rule, now, false)
}

func (m *Memory) decide(key string, rule Rule, now time.Time, count bool) (Decision, error) {
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	if rule.Unlimited() {
		return unlimited, nil
	}
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = string(sum[:])
	}
	k := memKey{limit: rule.Limit, per: rule.Per, key: key}
	interval := int64(rule.Interval())
	tau := interval * int64(rule.Limit-1)
	nowN := now.UnixNano()

	sh := &m.shards[maphash.String(m.seed, key)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tat, known := sh.tat[k]
	allowed, newTAT, retry, remaining := gcra(tat, nowN, interval, tau)
	if !allowed {
		if count && newTAT < tat { // the clock stepped back
			sh.tat[k] = newTAT
		}
		return Decision{RetryAfter: time.Duration(retry)}, nil
	}
	if count {
		if !known && len(sh.tat) >= m.perShard {
			sh.evict(nowN)
		}
		sh.tat[k] = newTAT
	}
	return Decision{Allowed: true, Remaining: remaining}, nil
}

// evict makes room: it drops the sampled entries that have expired (their
// state equals a new key's), or else one live entry: of the rule most of
// the sample is under, the entry closest to expiry, the one whose loss
// gives away the least budget. Choosing by rule first means a flood of
// keys under one rule (client addresses) pushes out keys under that rule,
// never the few keys of another (a global budget), however constrained
// the flood's keys are.
func (sh *memShard) evict(now int64) {
	type candidate struct {
		key memKey
		tat int64
		n   int // sampled entries under the rule
	}
	byRule := make(map[memKey]*candidate, 4) // key "" : the rule alone
	var seen int
	dropped := false
	for k, tat := range sh.tat { // map order is randomised: a random sample
		if tat <= now {
			delete(sh.tat, k)
			dropped = true
		} else {
			r := memKey{limit: k.limit, per: k.per}
			c := byRule[r]
			if c == nil {
				c = &candidate{key: k, tat: tat}
				byRule[r] = c
			}
			c.n++
			if tat < c.tat {
				c.key, c.tat = k, tat
			}
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	if dropped {
		return
	}
	var victim *candidate
	for _, c := range byRule {
		if victim == nil || c.n > victim.n || (c.n == victim.n && c.tat < victim.tat) {
			victim = c
		}
	}
	if victim != nil {
		delete(sh.tat, victim.key)
	}
}

// Len reports how many keys are held, for tests and metrics.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
		sh.mu.Unlock()
	}
	return n
}
