package live

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
)

// Store keeps a key ring: *filestore.Store and *redisring.Store implement
// it.
type Store interface {
	// Load reads the ring and opens its secrets.
	Load(ctx context.Context) (*keys.Ring, error)
	// Update loads the ring, applies fn and stores the result as one step
	// (a writer lock, or an optimistic retry), returning the stored ring.
	// If fn fails nothing is stored.
	Update(ctx context.Context, fn func(*keys.Ring) error) (*keys.Ring, error)
}

// Watcher is a Store that reports other writers' changes:
// *redisring.Store and *filestore.Store implement it.
type Watcher interface {
	Store
	// LoadVersion is Load with the store's change counter at that read.
	LoadVersion(ctx context.Context) (*keys.Ring, uint64, error)
	// Watch calls fn with the new counter after each change later than
	// since, on the caller's goroutine, until ctx ends.
	Watch(ctx context.Context, since uint64, fn func(version uint64)) error
}

// Defaults of Options.
const (
	// DefaultMaintainEvery is how often a followed Ring prunes retired
	// keys and, with RotateEvery, rotates when due.
	DefaultMaintainEvery = time.Minute
	// MinRotateEvery bounds RotateEvery from below: the next key is
	// published one period before it signs, and verifiers refetch the key
	// set at least hourly (verifier/remotekeys DefaultMaxRefresh).
	MinRotateEvery = time.Hour
)

// Options configure Open and Follow. The zero value is useful.
type Options struct {
	// Logger receives reload failures (default: discarded).
	Logger *slog.Logger
	// Now is the clock of Rotate and Revoke, read on every call (default
	// time.Now).
	Now func() time.Time
	// Rand is the source of new keys (default crypto/rand).
	Rand io.Reader
	// RetryDelay is how long Follow waits before watching again after
	// Watch returned an error while the Ring is open (default 1 s).
	RetryDelay time.Duration
	// RetiredKeep is how long a retired key stays published before Rotate,
	// Revoke and Prune drop it: at least the longest access-token lifetime
	// plus verifier leeway (default keys.DefaultRetiredKeep, 60 min 30 s);
	// a shorter one is refused.
	RetiredKeep time.Duration
	// MaintainEvery is how often a followed Ring runs Prune and, with
	// RotateEvery, RotateIfDue (default DefaultMaintainEvery). Each checks
	// the ring it serves first and asks the store only when something is
	// due, so every node may run it.
	MaintainEvery time.Duration
	// RotateEvery, when set, makes a followed Ring rotate once the current
	// key has signed for this long (RotateIfDue); at least
	// MinRotateEvery. Zero: only explicit rotations.
	RotateEvery time.Duration
}

func (o *Options) setDefaults() error {
	if o.RetryDelay < 0 || o.RetiredKeep < 0 || o.MaintainEvery < 0 || o.RotateEvery < 0 {
		return errors.New("live: negative option")
	}
	if o.RetiredKeep != 0 && o.RetiredKeep < keys.DefaultRetiredKeep {
		// Shorter, and a retired key leaves the key set while tokens it
		// signed are still valid: verifiers refuse them.
		return fmt.Errorf("live: RetiredKeep must be zero (the default) or at least %v", keys.DefaultRetiredKeep)
	}
	if o.RotateEvery != 0 && o.RotateEvery < MinRotateEvery {
		return fmt.Errorf("live: RotateEvery must be zero (off) or at least %v", MinRotateEvery)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
	if o.RetiredKeep == 0 {
		o.RetiredKeep = keys.DefaultRetiredKeep
	}
	if o.MaintainEvery == 0 {
		o.MaintainEvery = DefaultMaintainEvery
	}
	return nil
}

// Ring is the served key ring. It is safe for concurrent use.
type Ring struct {
	st   Store
	p    atomic.Pointer[keys.Ring]
	mu   sync.Mutex // serialises changes and reloads
	opts Options

	stop      context.CancelFunc // nil unless following
	done      sync.WaitGroup
	closeOnce sync.Once
}

// errNotDue aborts a store Update that found nothing to do: nothing is
// written.
var errNotDue = errors.New("live: nothing due")

func newRing(st Store, r *keys.Ring, opts Options) *Ring {
	l := &Ring{st: st, opts: opts}
	l.p.Store(r)
	return l
}

// Open loads the ring from st and serves it. Changes made by others are
// not followed and nothing runs on a timer (call Prune and RotateIfDue
// yourself); Close is a no-op.
func Open(ctx context.Context, st Store, opts Options) (*Ring, error) {
	if st == nil {
		return nil, errors.New("live: nil store")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	r, err := st.Load(ctx)
	if err != nil {
		return nil, err
	}
	return newRing(st, r, opts), nil
}

// Follow loads the ring from w, serves it and reloads it on every change w
// reports, until Close. Every MaintainEvery it also drops retired keys past
// RetiredKeep (Prune) and, with RotateEvery, rotates when due
// (RotateIfDue). ctx bounds the first load only.
func Follow(ctx context.Context, w Watcher, opts Options) (*Ring, error) {
	if w == nil {
		return nil, errors.New("live: nil store")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	r, version, err := w.LoadVersion(ctx)
	if err != nil {
		return nil, err
	}
	l := newRing(w, r, opts)
	fctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	l.done.Add(2)
	go l.follow(fctx, w, version)
	go l.maintain(fctx)
	return l, nil
}

// maintain runs Prune and RotateIfDue every MaintainEvery until ctx ends.
func (l *Ring) maintain(ctx context.Context) {
	defer l.done.Done()
	t := time.NewTicker(l.opts.MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := l.Prune(ctx); err != nil && ctx.Err() == nil {
			l.opts.Logger.Warn("pruning retired signing keys failed; trying again later", slog.Any("error", err))
		}
		if _, err := l.RotateIfDue(ctx); err != nil && ctx.Err() == nil {
			l.opts.Logger.Warn("scheduled key rotation failed; trying again later", slog.Any("error", err))
		}
	}
}

// follow runs Watch until ctx ends, watching again after a failure.
func (l *Ring) follow(ctx context.Context, w Watcher, since uint64) {
	defer l.done.Done()
	watchLoop(ctx, w.Watch, since, l.reload, l.opts.Logger, "watching the key ring failed; retrying", l.opts.RetryDelay)
}

// watchLoop runs watch from since, calling reload after each change, and
// starts it again after retry when it fails, until ctx ends.
func watchLoop(ctx context.Context, watch func(context.Context, uint64, func(uint64)) error, since uint64,
	reload func(context.Context), log *slog.Logger, failed string, retry time.Duration) {
	for {
		err := watch(ctx, since, func(v uint64) {
			since = v
			reload(ctx)
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn(failed, slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

func (l *Ring) reload(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.st.Load(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.opts.Logger.Warn("reloading the key ring failed; serving the ring last loaded", slog.Any("error", err))
		}
		return
	}
	l.p.Store(r)
}

// Close stops following the store (Follow) and waits for its goroutine.
// The Ring still serves the last ring afterwards.
func (l *Ring) Close() error {
	l.closeOnce.Do(func() {
		if l.stop != nil {
			l.stop()
			l.done.Wait()
		}
	})
	return nil
}

// Current returns the signing key.
func (l *Ring) Current() *keys.SecretKey { return l.p.Load().Current() }

// Lookup returns a key of the ring and its status.
func (l *Ring) Lookup(kid keys.KeyID) (keys.PublicKey, keys.Status, bool) {
	return l.p.Load().Lookup(kid)
}

// KeySet returns the published key-set document for issuer.
func (l *Ring) KeySet(issuer string) keys.KeySetDocument { return l.p.Load().KeySet(issuer) }

// Rotate promotes the next key, retires the current one (its secret is
// dropped) and adds a new next key, in the store and then here. Retired
// keys past RetiredKeep are dropped in the same write.
func (l *Ring) Rotate(ctx context.Context) error {
	return l.update(ctx, func(r *keys.Ring) error {
		now := l.opts.Now()
		r.Prune(now, l.opts.RetiredKeep)
		return r.Rotate(l.opts.Rand, now)
	})
}

// Revoke withdraws kid at once, in the store and then here:
// keys.ErrKeyNotFound when the ring has no such key, keys.ErrKeyRevoked when
// it was already revoked. Retired keys past RetiredKeep are dropped in the
// same write.
func (l *Ring) Revoke(ctx context.Context, kid keys.KeyID) error {
	return l.update(ctx, func(r *keys.Ring) error {
		now := l.opts.Now()
		r.Prune(now, l.opts.RetiredKeep)
		return r.Revoke(kid, l.opts.Rand, now)
	})
}

// Prune drops, in the store and then here, the retired keys that stopped
// signing more than RetiredKeep ago, so that they leave the published key
// set, and returns how many. When the ring served holds none that is due
// it does nothing, without asking the store; a node that lost the race to
// another writes nothing either.
func (l *Ring) Prune(ctx context.Context) (int, error) {
	if l.p.Load().Prunable(l.opts.Now(), l.opts.RetiredKeep) == 0 {
		return 0, nil
	}
	n := 0
	err := l.update(ctx, func(r *keys.Ring) error {
		if n = r.Prune(l.opts.Now(), l.opts.RetiredKeep); n == 0 {
			return errNotDue
		}
		return nil
	})
	if errors.Is(err, errNotDue) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	l.opts.Logger.Info("dropped retired signing keys past their keep", slog.Int("keys", n), slog.Duration("keep", l.opts.RetiredKeep))
	return n, nil
}

// RotateIfDue rotates (as Rotate) when RotateEvery is set and the current
// key has signed for at least that long, and reports whether it did. The
// check runs again inside the store's update, on the ring as stored, so
// that nodes due at once rotate once: the others find a fresh current key.
// A next key too new to sign (keys.ErrNextTooNew: it replaced a revoked
// next key less than keys.MinNextAge ago) is not due either: a later run
// rotates once it is old enough.
func (l *Ring) RotateIfDue(ctx context.Context) (bool, error) {
	every := l.opts.RotateEvery
	due := func(r *keys.Ring) bool { return every > 0 && l.opts.Now().Sub(r.Activated()) >= every }
	if !due(l.p.Load()) {
		return false, nil
	}
	err := l.update(ctx, func(r *keys.Ring) error {
		if !due(r) {
			return errNotDue
		}
		now := l.opts.Now()
		r.Prune(now, l.opts.RetiredKeep)
		return r.Rotate(l.opts.Rand, now)
	})
	if errors.Is(err, errNotDue) {
		return false, nil
	}
	if errors.Is(err, keys.ErrNextTooNew) {
		l.opts.Logger.Debug("scheduled rotation waits for the next key to be published long enough", slog.Any("reason", err))
		return false, nil
	}
	if err != nil {
		return false, err
	}
	l.opts.Logger.Info("rotated the signing key on schedule", slog.Duration("every", every),
		slog.String("current_kid", string(l.Current().ID())))
	return true, nil
}

func (l *Ring) update(ctx context.Context, fn func(*keys.Ring) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.st.Update(ctx, fn)
	if err != nil {
		return err
	}
	l.p.Store(r)
	return nil
}
