package revocation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// Defaults for MirrorOptions.
const (
	DefaultMaxStaleness = 5 * time.Second
	DefaultBatch        = 1000
	DefaultMinBackoff   = 50 * time.Millisecond
	DefaultMaxBackoff   = 2 * time.Second
	DefaultSweepEvery   = time.Minute
	maxBlock            = time.Second
)

// MirrorOptions configure NewMirror. The zero value is useful: fail closed
// after DefaultMaxStaleness.
type MirrorOptions struct {
	// MaxStaleness is how long the mirror may go without hearing from its
	// store before CheckRevoked stops vouching for tokens (default
	// DefaultMaxStaleness).
	MaxStaleness time.Duration
	// FailOpen, when true, lets CheckRevoked accept tokens the stale mirror
	// does not deny (it still denies what it knows). Default false: a stale
	// mirror refuses every token with ErrStale.
	//
	// SECURITY: failing open means a revocation made while this verifier
	// is cut off from the store is ignored until the token expires.
	FailOpen bool
	// Now is the clock, read on every check (default time.Now).
	Now func() time.Time
	// Logger receives store failures (default: discarded).
	Logger *slog.Logger
	// Block is how long one Follow waits for events (default
	// min(MaxStaleness/3, 1s)); it must be at most MaxStaleness/2, since a
	// Follow that returns events counts from when it was asked for: the
	// mirror's age reaches about twice Block between such replies.
	Block time.Duration
	// Batch is the most events asked for per Follow (default DefaultBatch).
	Batch int
	// MinBackoff and MaxBackoff bound the wait between retries after a
	// store failure (defaults DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// SweepEvery is how often expired entries are dropped from memory
	// (default DefaultSweepEvery). Expired entries are ignored by checks
	// before they are swept.
	SweepEvery time.Duration
}

// slot is a device or account entry, times in Unix microseconds.
type slot struct {
	before  int64
	expires int64
}

// Mirror keeps an in-memory copy of a Store's live entries, following its
// event stream, and implements verifier.RevocationChecker with map lookups
// whose cost does not depend on the number of entries. It is safe for
// concurrent use.
type Mirror struct {
	store        Store
	maxStaleness time.Duration
	failOpen     bool
	now          func() time.Time
	log          *slog.Logger
	block        time.Duration
	batch        int
	minBackoff   time.Duration
	maxBackoff   time.Duration
	sweepEvery   time.Duration

	epoch     atomic.Int64 // KindAll Before, Unix microseconds; 0 = none
	lastHeard atomic.Int64 // Unix nanoseconds by now(); 0 = never
	synced    chan struct{}
	syncOnce  sync.Once

	mu       sync.RWMutex
	tokens   map[string]int64 // jti -> expires
	devices  map[string]slot
	accounts map[string]slot
	keys     map[keys.KeyID]struct{}
	cursor   Cursor
	observed uint64 // Observe calls, so that load sees one made while it ran

	runMu   sync.Mutex
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewMirror returns a Mirror of s. It is empty and stale until it runs
// (Start or Run) and loads its first snapshot.
func NewMirror(s Store, o MirrorOptions) (*Mirror, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil store", ErrConfig)
	}
	if o.MaxStaleness < 0 || o.Block < 0 || o.Batch < 0 || o.MinBackoff < 0 || o.MaxBackoff < 0 || o.SweepEvery < 0 {
		return nil, fmt.Errorf("%w: negative option", ErrConfig)
	}
	if o.MaxStaleness == 0 {
		o.MaxStaleness = DefaultMaxStaleness
	}
	if o.Block == 0 {
		o.Block = min(o.MaxStaleness/3, maxBlock)
	}
	if o.Block <= 0 || o.Block > o.MaxStaleness/2 {
		return nil, fmt.Errorf("%w: Block must be positive and at most MaxStaleness/2", ErrConfig)
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		return nil, fmt.Errorf("%w: MaxBackoff below MinBackoff", ErrConfig)
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Mirror{
		store: s, maxStaleness: o.MaxStaleness, failOpen: o.FailOpen, now: o.Now, log: o.Logger,
		block: o.Block, batch: o.Batch, minBackoff: o.MinBackoff, maxBackoff: o.MaxBackoff,
		sweepEvery: o.SweepEvery,
		synced:     make(chan struct{}),
		tokens:     map[string]int64{},
		devices:    map[string]slot{},
		accounts:   map[string]slot{},
		keys:       map[keys.KeyID]struct{}{},
	}, nil
}

// Errors returned by CheckRevoked, allocated once: the hot path allocates
// nothing. They wrap ErrRevoked or ErrStale and name the kind of entry,
// never a claim value.
var (
	errRevokedToken   = fmt.Errorf("%w (token)", ErrRevoked)
	errRevokedDevice  = fmt.Errorf("%w (device)", ErrRevoked)
	errRevokedAccount = fmt.Errorf("%w (account)", ErrRevoked)
	errRevokedAll     = fmt.Errorf("%w (all)", ErrRevoked)
	errRevokedKey     = fmt.Errorf("%w (key)", ErrRevoked)
	errStale          = fmt.Errorf("%w: failing closed", ErrStale)
)

// CheckRevoked implements verifier.RevocationChecker. It returns an error
// wrapping ErrRevoked when an entry denies the token, or ErrStale when the
// mirror is stale and fails closed; nil otherwise.
func (m *Mirror) CheckRevoked(_ context.Context, kid keys.KeyID, c *token.Claims) error {
	if c == nil {
		return fmt.Errorf("%w: nil claims", ErrRevoked)
	}
	now := m.now()
	nowUS := now.UnixMicro()
	iat := c.IssuedAt.UnixMicro()
	if e := m.epoch.Load(); e != 0 && iat < e {
		return errRevokedAll
	}
	var err error
	m.mu.RLock()
	if _, ok := m.keys[kid]; ok {
		err = errRevokedKey
	} else if exp, ok := m.tokens[c.ID]; ok && nowUS < exp {
		err = errRevokedToken
	} else if s, ok := m.devices[c.Device]; ok && iat < s.before && nowUS < s.expires {
		err = errRevokedDevice
	} else if s, ok := m.accounts[c.Subject]; ok && iat < s.before && nowUS < s.expires {
		err = errRevokedAccount
	}
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	if !m.failOpen && m.stale(now) {
		return errStale
	}
	return nil
}

// CheckSession decides whether a device session may still refresh: it
// refuses (ErrRevoked) when a device entry for deviceID or an account entry
// for accountID is newer than issuedAt, the issue time of the refresh token
// presented. Token, key and all entries do not stop a session: after an
// all entry every device re-proves its key by refreshing. A stale mirror
// refuses with ErrStale (fail closed, retry later) unless it fails open.
func (m *Mirror) CheckSession(_ context.Context, deviceID, accountID string, issuedAt time.Time) error {
	now := m.now()
	nowUS, iat := now.UnixMicro(), issuedAt.UnixMicro()
	var err error
	m.mu.RLock()
	if s, ok := m.devices[deviceID]; ok && iat < s.before && nowUS < s.expires {
		err = errRevokedDevice
	} else if s, ok := m.accounts[accountID]; ok && iat < s.before && nowUS < s.expires {
		err = errRevokedAccount
	}
	m.mu.RUnlock()
	if err != nil {
		return err
	}
	if !m.failOpen && m.stale(now) {
		return errStale
	}
	return nil
}

func (m *Mirror) stale(now time.Time) bool {
	h := m.lastHeard.Load()
	if h == 0 {
		return true
	}
	age := m.age(now, h)
	return age < 0 || age > m.maxStaleness
}

// age is the time since the mirror last heard from its store (h, Unix
// nanoseconds), as of now. now may have been read before the Run
// goroutine stored h: a negative age is read again on a fresh clock
// reading, and one still negative means the clock was stepped back, which
// the caller counts as stale (the store proved nothing about a time
// before its proof) until the store is heard from again.
func (m *Mirror) age(now time.Time, h int64) time.Duration {
	age := now.Sub(time.Unix(0, h))
	if age < 0 {
		age = m.now().Sub(time.Unix(0, h))
	}
	return age
}

// FailsOpen reports whether the mirror was built to accept tokens while it
// is stale (MirrorOptions.FailOpen). A caller that would lean on the mirror
// alone for a security decision asks first, and keeps its own check when
// the mirror fails open.
func (m *Mirror) FailsOpen() bool { return m.failOpen }

// Ready returns nil when the mirror has heard from its store within
// MaxStaleness, an error wrapping ErrStale otherwise (for /readyz). A
// fail-open mirror reports staleness here too.
func (m *Mirror) Ready() error {
	h := m.lastHeard.Load()
	if h == 0 {
		return fmt.Errorf("%w: no snapshot loaded yet", ErrStale)
	}
	age := m.age(m.now(), h)
	if age < 0 {
		return fmt.Errorf("%w: the clock was stepped back %v since the store was last heard from", ErrStale, (-age).Round(time.Millisecond))
	}
	if age > m.maxStaleness {
		return fmt.Errorf("%w: last heard from the store %v ago (bound %v)", ErrStale, age.Round(time.Millisecond), m.maxStaleness)
	}
	return nil
}

// LastHeard is when the mirror last heard from its store (when a snapshot,
// or a Follow that came back with a batch of events short of
// MirrorOptions.Batch, was asked for; Block after a Follow that came back
// with none was asked for, or when it came back if sooner), in the
// mirror's clock; zero before the first
// snapshot. Its age is the mirror's lag bound: an entry written before
// LastHeard is applied.
func (m *Mirror) LastHeard() time.Time {
	h := m.lastHeard.Load()
	if h == 0 {
		return time.Time{}
	}
	return time.Unix(0, h)
}

// MaxStaleness is the bound after which the mirror refuses (or, failing
// open, allows) every token.
func (m *Mirror) MaxStaleness() time.Duration { return m.maxStaleness }

// Synced is closed once the first snapshot is loaded.
func (m *Mirror) Synced() <-chan struct{} { return m.synced }

// Len is the number of entries held, expired ones not yet swept included.
func (m *Mirror) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := len(m.tokens) + len(m.devices) + len(m.accounts) + len(m.keys)
	if m.epoch.Load() != 0 {
		n++
	}
	return n
}

// Cursor is the stream position the mirror reflects.
func (m *Mirror) Cursor() Cursor {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cursor
}

// Start runs the mirror in a goroutine owned by m until Close. Starting a
// running mirror does nothing.
func (m *Mirror) Start() {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.running {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.running, m.cancel, m.done = true, cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		_ = m.Run(ctx)
	}()
}

// Close stops the goroutine started by Start and waits for it.
func (m *Mirror) Close() error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if !m.running {
		return nil
	}
	m.cancel()
	<-m.done
	m.running = false
	return nil
}

// Run loads a snapshot, then follows the store until ctx ends, and returns
// ctx's error. Store failures are logged and retried with backoff; on
// ErrCursorGone the snapshot is reloaded. Run at most one Run per Mirror.
func (m *Mirror) Run(ctx context.Context) error {
	backoff := m.minBackoff
	fail := func(what string, err error) {
		m.log.Warn("revocation mirror: store failed", "op", what, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, m.maxBackoff)
	}
	needSnapshot := true
	lastSweep := m.now()
	for ctx.Err() == nil {
		if needSnapshot {
			// The snapshot is as of when it was asked for: an entry added
			// while a long scan ran may be missing from it.
			asOf := m.now()
			entries, cur, err := m.store.Snapshot(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fail("snapshot", err)
				}
				continue
			}
			m.load(entries, cur)
			m.heardAt(asOf)
			m.syncOnce.Do(func() { close(m.synced) })
			needSnapshot, backoff = false, m.minBackoff
		}
		// A reply proves the store as of when it was made, which may be
		// long before it arrives (held on the network up to the read
		// timeout): count from when it was asked for.
		asked := m.now()
		events, next, err := m.store.Follow(ctx, m.Cursor(), m.batch, m.block)
		switch {
		case errors.Is(err, ErrCursorGone):
			m.log.Info("revocation mirror: stream trimmed past the cursor, reloading the snapshot")
			needSnapshot = true
			continue
		case err != nil:
			if ctx.Err() == nil {
				fail("follow", err)
			}
			continue
		}
		m.apply(events, next)
		m.heardFollow(asked, len(events))
		backoff = m.minBackoff
		if now := m.now(); now.Sub(lastSweep) >= m.sweepEvery {
			m.sweep(now)
			lastSweep = now
		}
	}
	return ctx.Err()
}

// heardAt records that the store proved the mirror current as of t.
func (m *Mirror) heardAt(t time.Time) { m.lastHeard.Store(t.UnixNano()) }

// heardFollow records what a Follow asked for at asked and answered with
// n events proved. A full batch does not show that nothing more is
// waiting. A shorter one shows it as of when the store answered, some
// time after asked, and its reply can be held on the network for
// seconds: it counts from asked. An empty one came when Block passed
// without an event (Store.Follow), so the store answered Block after
// asked at the earliest; no later than the reply's arrival.
func (m *Mirror) heardFollow(asked time.Time, n int) {
	switch {
	case n == 0:
		t := asked.Add(m.block)
		if now := m.now(); now.Before(t) {
			t = now
		}
		m.heardAt(t)
	case n < m.batch:
		m.heardAt(asked)
	}
}

// load replaces the state with a snapshot, built off the lock, and
// carries over what the mirror held that the snapshot lacks and has not
// expired: entries only deny, so a snapshot without one (Redis lost its
// data, a failover to a replica that had not received it, a deletion by
// whoever can write to the store) does not take it away from this
// mirror. Token, device and account entries go at their own expiry; key
// entries and the all epoch never expire and are kept for good.
func (m *Mirror) load(entries []Entry, cur Cursor) {
	tokens := make(map[string]int64, len(entries))
	devices := map[string]slot{}
	accounts := map[string]slot{}
	ks := map[keys.KeyID]struct{}{}
	var epoch int64
	for _, e := range entries {
		epoch = put(e, tokens, devices, accounts, ks, epoch)
	}
	nowUS := m.now().UnixMicro()
	// Only Observe changes the maps meanwhile (apply and sweep run on this
	// goroutine): the bulk is carried under the read lock, and again under
	// the write lock only if an Observe came in between.
	m.mu.RLock()
	gen := m.observed
	m.carry(nowUS, tokens, devices, accounts, ks)
	m.mu.RUnlock()
	m.mu.Lock()
	if m.observed != gen {
		m.carry(nowUS, tokens, devices, accounts, ks)
	}
	m.tokens, m.devices, m.accounts, m.keys, m.cursor = tokens, devices, accounts, ks, cur
	m.epoch.Store(max(epoch, m.epoch.Load()))
	m.mu.Unlock()
}

// carry merges the mirror's live entries into the given maps. The caller
// holds m.mu.
func (m *Mirror) carry(nowUS int64, tokens map[string]int64, devices, accounts map[string]slot, ks map[keys.KeyID]struct{}) {
	for k, exp := range m.tokens {
		if nowUS < exp && exp > tokens[k] {
			tokens[k] = exp
		}
	}
	for k, s := range m.devices {
		if nowUS < s.expires {
			devices[k] = merge(devices[k], s.before, s.expires)
		}
	}
	for k, s := range m.accounts {
		if nowUS < s.expires {
			accounts[k] = merge(accounts[k], s.before, s.expires)
		}
	}
	for k := range m.keys {
		ks[k] = struct{}{}
	}
}

func (m *Mirror) apply(events []Entry, next Cursor) {
	m.mu.Lock()
	epoch := m.epoch.Load()
	for _, e := range events {
		epoch = put(e, m.tokens, m.devices, m.accounts, m.keys, epoch)
	}
	m.epoch.Store(epoch)
	m.cursor = next
	m.mu.Unlock()
}

// Observe applies an entry this process has just written to the store,
// without waiting for it to come back through the event stream: a node that
// revokes something refuses it at once itself (read your own writes). The
// stream delivers the same entry later; applying it twice changes nothing.
// Observe does not move the cursor or refresh staleness.
func (m *Mirror) Observe(e Entry) {
	if e.Validate() != nil {
		return
	}
	m.mu.Lock()
	m.epoch.Store(put(e, m.tokens, m.devices, m.accounts, m.keys, m.epoch.Load()))
	m.observed++
	m.mu.Unlock()
}

// put merges e into the maps: the later Before and Expires win, so that
// applying an entry twice, or an older one after a newer, changes nothing.
func put(e Entry, tokens map[string]int64, devices, accounts map[string]slot, ks map[keys.KeyID]struct{}, epoch int64) int64 {
	before, expires := e.Before.UnixMicro(), e.Expires.UnixMicro()
	switch e.Kind {
	case KindToken:
		if expires > tokens[e.ID] {
			tokens[e.ID] = expires
		}
	case KindDevice:
		devices[e.ID] = merge(devices[e.ID], before, expires)
	case KindAccount:
		accounts[e.ID] = merge(accounts[e.ID], before, expires)
	case KindKey:
		ks[keys.KeyID(e.ID)] = struct{}{}
	case KindAll:
		epoch = max(epoch, before)
	}
	return epoch
}

func merge(s slot, before, expires int64) slot {
	return slot{before: max(s.before, before), expires: max(s.expires, expires)}
}

// sweep drops expired entries, a batch at a time so that checks are not
// held up behind one long write lock.
func (m *Mirror) sweep(now time.Time) {
	nowUS := now.UnixMicro()
	const batch = 4096
	for {
		var toks, devs, accs []string
		m.mu.RLock()
		for k, exp := range m.tokens {
			if exp <= nowUS {
				toks = append(toks, k)
				if len(toks) == batch {
					break
				}
			}
		}
		for k, s := range m.devices {
			if s.expires <= nowUS {
				devs = append(devs, k)
				if len(devs) == batch {
					break
				}
			}
		}
		for k, s := range m.accounts {
			if s.expires <= nowUS {
				accs = append(accs, k)
				if len(accs) == batch {
					break
				}
			}
		}
		m.mu.RUnlock()
		if len(toks)+len(devs)+len(accs) == 0 {
			return
		}
		m.mu.Lock()
		for _, k := range toks {
			if m.tokens[k] <= nowUS {
				delete(m.tokens, k)
			}
		}
		for _, k := range devs {
			if m.devices[k].expires <= nowUS {
				delete(m.devices, k)
			}
		}
		for _, k := range accs {
			if m.accounts[k].expires <= nowUS {
				delete(m.accounts, k)
			}
		}
		m.mu.Unlock()
	}
}
