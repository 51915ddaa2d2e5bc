package live

import (
	"context"
	"errors"
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
}

// Ring is the served key ring. It is safe for concurrent use.
type Ring struct {
	st   Store
	p    atomic.Pointer[keys.Ring]
	mu   sync.Mutex // serialises changes and reloads
	opts Options

	stop      context.CancelFunc // nil unless following
	done      chan struct{}
	closeOnce sync.Once
}

func newRing(st Store, r *keys.Ring, opts Options) *Ring {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	l := &Ring{st: st, opts: opts}
	l.p.Store(r)
	return l
}

// Open loads the ring from st and serves it. Changes made by others are
// not followed; Close is a no-op.
func Open(ctx context.Context, st Store, opts Options) (*Ring, error) {
	if st == nil {
		return nil, errors.New("live: nil store")
	}
	r, err := st.Load(ctx)
	if err != nil {
		return nil, err
	}
	return newRing(st, r, opts), nil
}

// Follow loads the ring from w, serves it and reloads it on every change w
// reports, until Close. ctx bounds the first load only.
func Follow(ctx context.Context, w Watcher, opts Options) (*Ring, error) {
	if w == nil {
		return nil, errors.New("live: nil store")
	}
	r, version, err := w.LoadVersion(ctx)
	if err != nil {
		return nil, err
	}
	l := newRing(w, r, opts)
	fctx, stop := context.WithCancel(context.Background())
	l.stop, l.done = stop, make(chan struct{})
	go l.follow(fctx, w, version)
	return l, nil
}

// follow runs Watch until ctx ends, watching again after a failure.
func (l *Ring) follow(ctx context.Context, w Watcher, since uint64) {
	defer close(l.done)
	for {
		err := w.Watch(ctx, since, func(v uint64) {
			since = v
			l.reload(ctx)
		})
		if ctx.Err() != nil {
			return
		}
		l.opts.Logger.Warn("watching the key ring failed; retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.opts.RetryDelay):
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
			<-l.done
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

// Rotate promotes the next key, retires the current one and adds a new next
// key, in the store and then here.
func (l *Ring) Rotate(ctx context.Context) error {
	return l.update(ctx, func(r *keys.Ring) error { return r.Rotate(l.opts.Rand, l.opts.Now()) })
}

// Revoke withdraws kid at once, in the store and then here:
// keys.ErrKeyNotFound when the ring has no such key, keys.ErrKeyRevoked when
// it was already revoked.
func (l *Ring) Revoke(ctx context.Context, kid keys.KeyID) error {
	return l.update(ctx, func(r *keys.Ring) error { return r.Revoke(kid, l.opts.Rand, l.opts.Now()) })
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
