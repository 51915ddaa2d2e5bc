package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
)

// SecretStore keeps the secrets beside a key ring: the refresh-token keys
// and the peppers. *filestore.Store and *redisring.Store implement it.
type SecretStore interface {
	// LoadLocal returns the refresh-token keys, current first.
	LoadLocal(ctx context.Context) ([]keys.LocalKeyEntry, error)
	// RotateLocal adds a new current refresh-token key and drops retired
	// ones that stopped sealing more than keep (> 0) ago.
	RotateLocal(ctx context.Context, now time.Time, keep time.Duration) error
	// ResetLocal replaces every refresh-token key by one new key.
	ResetLocal(ctx context.Context, now time.Time) error
	// PruneLocal drops retired refresh-token keys that stopped sealing
	// more than keep (> 0) ago, writing nothing when none is due.
	PruneLocal(ctx context.Context, now time.Time, keep time.Duration) (int, error)
	// LoadPeppers returns the peppers, current first.
	LoadPeppers(ctx context.Context) ([]keys.PepperEntry, error)
	// RotatePepper adds a new current pepper and keeps the older ones.
	RotatePepper(ctx context.Context, now time.Time) error
	// EnsureSecrets creates the refresh-token keys and the pepper when
	// missing and reports what it created.
	EnsureSecrets(ctx context.Context, now time.Time) (localCreated, pepperCreated bool, err error)
}

// SecretWatcher is a SecretStore that reports changes, its own and other
// writers': *filestore.Store (by polling its files) and *redisring.Store
// (Pub/Sub and a poll) implement it.
type SecretWatcher interface {
	SecretStore
	// Version is the store's change marker; it differs after any write.
	Version(ctx context.Context) (uint64, error)
	// Watch calls fn with the new marker after each change that makes it
	// differ from since, on the caller's goroutine, until ctx ends.
	Watch(ctx context.Context, since uint64, fn func(version uint64)) error
}

// Defaults of SecretsOptions.
const (
	// DefaultRefreshKeep is the longest refresh-token lifetime the issuer
	// accepts (400 days): the safe bound when the caller says nothing.
	DefaultRefreshKeep   = 400 * 24 * time.Hour
	DefaultPruneInterval = time.Hour
)

// SecretsOptions configure OpenSecrets and FollowSecrets. The zero value
// is useful.
type SecretsOptions struct {
	// Logger receives what was created, reload failures and prunes
	// (default: discarded). No key or pepper is ever logged, only ids.
	Logger *slog.Logger
	// Now is the clock of the codec's expiry check and of every change,
	// read on every use (default time.Now).
	Now func() time.Time
	// RefreshKeep is how long a replaced refresh-token key still opens
	// the tokens it sealed: the issuer's RefreshTTL, the longest a refresh
	// token lives (default DefaultRefreshKeep).
	RefreshKeep time.Duration
	// PruneInterval is how often a followed Secrets drops the refresh-token
	// keys retired more than RefreshKeep ago (default
	// DefaultPruneInterval). Every node may do it; a prune with nothing to
	// drop writes nothing.
	PruneInterval time.Duration
	// RetryDelay is how long FollowSecrets waits before watching again
	// after Watch failed (default 1 s).
	RetryDelay time.Duration
}

// Secrets serves the refresh-token keys, through a refresh.Codec that
// follows them, and the peppers, as a flow.Pepper (Digests), while the
// store changes. It is safe for concurrent use.
type Secrets struct {
	st    SecretStore
	codec *refresh.Codec
	local atomic.Pointer[[]keys.LocalKeyEntry]
	pep   atomic.Pointer[[]*keys.Pepper]
	mu    sync.Mutex // serialises changes and reloads
	opts  SecretsOptions

	stop      context.CancelFunc // nil unless following
	done      sync.WaitGroup
	closeOnce sync.Once
}

// OpenSecrets creates the refresh-token keys and the pepper in st when
// missing (a ring made before they existed), loads both and serves them.
// Changes made by others are not followed; Close is a no-op.
func OpenSecrets(ctx context.Context, st SecretStore, opts SecretsOptions) (*Secrets, error) {
	if st == nil {
		return nil, errors.New("live: nil secret store")
	}
	return openSecrets(ctx, st, opts)
}

func openSecrets(ctx context.Context, st SecretStore, opts SecretsOptions) (*Secrets, error) {
	if opts.RefreshKeep < 0 || opts.PruneInterval < 0 || opts.RetryDelay < 0 {
		return nil, errors.New("live: negative option")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshKeep == 0 {
		opts.RefreshKeep = DefaultRefreshKeep
	}
	if opts.PruneInterval == 0 {
		opts.PruneInterval = DefaultPruneInterval
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Second
	}
	localCreated, pepperCreated, err := st.EnsureSecrets(ctx, opts.Now())
	if err != nil {
		return nil, err
	}
	if localCreated {
		opts.Logger.Warn("created refresh-token keys beside the key ring")
	}
	if pepperCreated {
		opts.Logger.Warn("created the pepper (code digests) beside the key ring")
	}
	s := &Secrets{st: st, opts: opts}
	local, err := st.LoadLocal(ctx)
	if err != nil {
		return nil, err
	}
	if len(local) == 0 {
		return nil, errors.New("live: the store returned no refresh-token key")
	}
	if s.codec, err = refresh.NewCodec(opts.Now, local[0].Key, restKeys(local)...); err != nil {
		return nil, err
	}
	s.local.Store(&local)
	peppers, err := st.LoadPeppers(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.servePeppers(peppers); err != nil {
		return nil, err
	}
	return s, nil
}

// FollowSecrets is OpenSecrets that then reloads the keys and peppers on
// every change w reports (a rotation by another node, by `hallpass keys`,
// or the end of every session), and drops refresh-token keys past
// RefreshKeep every PruneInterval, until Close. ctx bounds the first load
// only.
func FollowSecrets(ctx context.Context, w SecretWatcher, opts SecretsOptions) (*Secrets, error) {
	if w == nil {
		return nil, errors.New("live: nil secret store")
	}
	version, err := w.Version(ctx)
	if err != nil {
		return nil, err
	}
	s, err := openSecrets(ctx, w, opts)
	if err != nil {
		return nil, err
	}
	fctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.done.Add(2)
	go s.follow(fctx, w, version)
	go s.pruneLoop(fctx)
	return s, nil
}

func restKeys(list []keys.LocalKeyEntry) []*keys.LocalKey {
	out := make([]*keys.LocalKey, 0, len(list))
	for _, l := range list[1:] {
		out = append(out, l.Key)
	}
	return out
}

func (s *Secrets) serveLocal(local []keys.LocalKeyEntry) error {
	if len(local) == 0 {
		return errors.New("live: the store returned no refresh-token key")
	}
	if err := s.codec.Rekey(local[0].Key, restKeys(local)...); err != nil {
		return err
	}
	s.local.Store(&local)
	return nil
}

func (s *Secrets) servePeppers(list []keys.PepperEntry) error {
	if len(list) == 0 {
		return errors.New("live: the store returned no pepper")
	}
	ps := make([]*keys.Pepper, 0, len(list))
	for _, p := range list {
		if p.Pepper == nil {
			return errors.New("live: the store returned a nil pepper")
		}
		ps = append(ps, p.Pepper)
	}
	s.pep.Store(&ps)
	return nil
}

// follow runs Watch until ctx ends, watching again after a failure.
func (s *Secrets) follow(ctx context.Context, w SecretWatcher, since uint64) {
	defer s.done.Done()
	watchLoop(ctx, w.Watch, since, s.reload, s.opts.Logger, "watching the refresh-token keys and pepper failed; retrying", s.opts.RetryDelay)
}

func (s *Secrets) pruneLoop(ctx context.Context) {
	defer s.done.Done()
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
				s.opts.Logger.Warn("pruning old refresh-token keys failed; trying again later", slog.Any("error", err))
			}
		}
	}
}

// reload loads both lists and serves each that loaded; a failure keeps
// what was served and is logged.
func (s *Secrets) reload(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocalLocked(ctx); err != nil && ctx.Err() == nil {
		s.opts.Logger.Warn("reloading the refresh-token keys failed; serving the keys last loaded", slog.Any("error", err))
	}
	if err := s.reloadPeppersLocked(ctx); err != nil && ctx.Err() == nil {
		s.opts.Logger.Warn("reloading the pepper failed; serving the peppers last loaded", slog.Any("error", err))
	}
}

func (s *Secrets) reloadLocalLocked(ctx context.Context) error {
	local, err := s.st.LoadLocal(ctx)
	if err != nil {
		return err
	}
	return s.serveLocal(local)
}

func (s *Secrets) reloadPeppersLocked(ctx context.Context) error {
	ps, err := s.st.LoadPeppers(ctx)
	if err != nil {
		return err
	}
	return s.servePeppers(ps)
}

// Close stops following the store (FollowSecrets) and waits for its
// goroutines. The Secrets still serve the last keys afterwards.
func (s *Secrets) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
			s.done.Wait()
		}
	})
	return nil
}

// Codec returns the refresh-token codec, which follows the store: it
// seals under the current key and opens under every key the store holds,
// as last loaded. Give it to the issuer (issuer.Config.Refresh).
func (s *Secrets) Codec() *refresh.Codec { return s.codec }

// Digests returns HMAC-SHA-256(pepper, msg) under every pepper, the
// current one first: flow.Pepper.
func (s *Secrets) Digests(msg []byte) [][]byte {
	ps := *s.pep.Load()
	out := make([][]byte, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Digest(msg))
	}
	return out
}

// RotateRefresh makes a new refresh-token key, which seals from now on;
// the replaced ones still open the tokens they sealed until RefreshKeep
// has passed, then they are pruned. In the store, then here; other nodes
// follow the store.
func (s *Secrets) RotateRefresh(ctx context.Context) error {
	return s.changeLocal(ctx, func(now time.Time) error { return s.st.RotateLocal(ctx, now, s.opts.RefreshKeep) })
}

// EndAllSessions replaces every refresh-token key by a new one, in the
// store and then here.
//
// SECURITY: every outstanding refresh token stops opening at once here and
// on every other node as soon as it follows the change: every device
// session ends, and each device must join its account again (a link or a
// recovery code). For a real compromise of devices or of the keys.
func (s *Secrets) EndAllSessions(ctx context.Context) error {
	return s.changeLocal(ctx, func(now time.Time) error { return s.st.ResetLocal(ctx, now) })
}

func (s *Secrets) changeLocal(ctx context.Context, change func(now time.Time) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := change(s.opts.Now()); err != nil {
		return err
	}
	if err := s.reloadLocalLocked(ctx); err != nil {
		return fmt.Errorf("live: the change is stored but not yet served here: %w", err)
	}
	return nil
}

// RotatePepper makes a new current pepper; the older ones are kept, so
// codes digested under them still match. In the store, then here.
func (s *Secrets) RotatePepper(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.RotatePepper(ctx, s.opts.Now()); err != nil {
		return err
	}
	if err := s.reloadPeppersLocked(ctx); err != nil {
		return fmt.Errorf("live: the change is stored but not yet served here: %w", err)
	}
	return nil
}

// Prune drops, in the store and then here, the refresh-token keys retired
// more than RefreshKeep ago, and returns how many. When the keys last
// loaded hold none that is due it does nothing, without asking the store.
func (s *Secrets) Prune(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	due := false
	for _, l := range (*s.local.Load())[1:] {
		if !l.Retired.IsZero() && now.Sub(l.Retired) > s.opts.RefreshKeep {
			due = true
		}
	}
	if !due {
		return 0, nil
	}
	n, err := s.st.PruneLocal(ctx, now, s.opts.RefreshKeep)
	if err != nil {
		return 0, err
	}
	if err := s.reloadLocalLocked(ctx); err != nil {
		return n, err
	}
	if n > 0 {
		s.opts.Logger.Info("dropped refresh-token keys past their keep", slog.Int("keys", n), slog.Duration("keep", s.opts.RefreshKeep))
	}
	return n, nil
}
