package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/redis/go-redis/v9/push"

	"github.com/hallpass/hallpass/account"
)

// DefaultViewCachePoll is Options.ViewCachePoll's default.
const DefaultViewCachePoll = 50 * time.Millisecond

// errViewBusy: the cache's connection is taken; the caller reads through
// the pipe instead, without caching.
var errViewBusy = errors.New("view cache connection busy")

// ViewCacheStats counts what the view cache did since New.
type ViewCacheStats struct {
	Hits, Misses, Fills uint64
	// Invalidated counts accounts dropped because Redis reported a change
	// (or this node made one); Resets counts whole-cache drops: a new
	// connection, a failed check, a flush on the server.
	Invalidated, Resets uint64
	// Entries is the number of accounts held now, Size the most it holds
	// (Options.ViewCache; 0 without a cache).
	Entries, Size int
}

// viewCache keeps account views for GetAccountView with Redis
// server-assisted client-side caching (CLIENT TRACKING, default mode,
// RESP3). A miss reads the account and its recovery codes over one
// dedicated connection with tracking on, so Redis remembers that this
// connection holds those keys and, when anyone changes one, queues an
// "invalidate" push on the same connection, ahead of any later reply. The
// connection is read at least every poll (a HELLO, which also says the
// server is still a master), which hands each push to
// HandlePushNotification before the reply.
//
// Entries are only as good as the connection they were read on: Redis
// sends a key's invalidation to the connection that read it, and to no
// other. So every new connection (OnConnect) and every failed check drops
// the whole cache, and nothing is filled while the connection is not known
// good (live false). A fill is taken only if no invalidation of that
// account, and no reset, came between the read's reservation and its
// answer (the pending token), so a read that raced a write never
// outlives the write's invalidation. That also discards a read during
// which a push about an earlier write was handed over (the connection's
// next use after a change is often that read): the next miss fills.
type viewCache struct {
	rc   *redis.Client // one connection, RESP3, tracking on; replaced only under busy
	dial func() (*redis.Client, error)
	max  int
	poll time.Duration
	busy chan struct{} // held while a miss or a check uses the connection

	mu      sync.Mutex
	live    bool
	entries map[string]account.Account // by account id
	pending map[string]uint64          // account id -> token of the read in flight
	next    uint64
	stats   ViewCacheStats

	stop, done chan struct{}
}

// newViewCache starts a view cache of up to size accounts on a connection
// of its own to c's server, or, with sentinel (the options c was made
// with), to the master its Sentinels name.
func newViewCache(c *redis.Client, sentinel *redis.FailoverOptions, size int, poll time.Duration) (*viewCache, error) {
	if size < 1 || poll < 0 {
		return nil, errors.New("ViewCache below 1 or negative ViewCachePoll")
	}
	if poll == 0 {
		poll = DefaultViewCachePoll
	}
	v := &viewCache{max: size, poll: poll, busy: make(chan struct{}, 1),
		entries: map[string]account.Account{}, pending: map[string]uint64{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if sentinel != nil {
		v.dial = v.sentinelDialer(*sentinel)
	} else {
		v.dial = v.nodeDialer(*c.Options())
	}
	var err error
	if v.rc, err = v.dial(); err != nil {
		return nil, err
	}
	v.check() // connect now; if Redis is not there yet, run keeps trying
	go v.run()
	return v, nil
}

// nodeDialer makes the cache's clients from o, the options of the store's
// client: how to reach the server, not the client's runtime parts.
func (v *viewCache) nodeDialer(o redis.Options) func() (*redis.Client, error) {
	o.Protocol = 3
	o.PushNotificationProcessor = nil // c's own: the handler must not reach it
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
	o.PoolSize, o.MaxActiveConns, o.MinIdleConns, o.MaxIdleConns = 1, 1, 0, 1
	o.ConnMaxIdleTime, o.ConnMaxLifetime = -1, 0
	o.OnConnect = v.chainOnConnect(o.OnConnect)
	return func() (*redis.Client, error) { return v.withHandler(redis.NewClient(&o)) }
}

// sentinelDialer makes the cache's clients as failover clients of their
// own: each asks the Sentinels for the master when it dials and, like the
// store's client, drops its connection when they announce a new one.
func (v *viewCache) sentinelDialer(o redis.FailoverOptions) func() (*redis.Client, error) {
	o.Protocol = 3
	o.PushNotificationProcessor = nil
	o.ReplicaOnly, o.UseDisconnectedReplicas = false, false
	o.PoolSize, o.MaxActiveConns, o.MinIdleConns, o.MaxIdleConns = 1, 1, 0, 1
	o.ConnMaxIdleTime, o.ConnMaxLifetime = -1, 0
	o.OnConnect = v.chainOnConnect(o.OnConnect)
	return func() (*redis.Client, error) { return v.withHandler(redis.NewFailoverClient(&o)) }
}

func (v *viewCache) chainOnConnect(prev func(context.Context, *redis.Conn) error) func(context.Context, *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error {
		if prev != nil {
			if err := prev(ctx, cn); err != nil {
				return err
			}
		}
		return v.onConnect(ctx, cn)
	}
}

func (v *viewCache) withHandler(rc *redis.Client) (*redis.Client, error) {
	if err := rc.RegisterPushNotificationHandler("invalidate", v, true); err != nil {
		rc.Close()
		return nil, fmt.Errorf("view cache: %w", err)
	}
	return rc, nil
}

// errNotMaster: the cache's connection reached a replica.
var errNotMaster = errors.New("view cache: the server is not a master")

// helloReply is what HELLO without arguments says of a connection.
type helloReply struct {
	proto      int64
	mode, role string // mode "sentinel": a failover client's connection to a Sentinel
}

// hello asks the server on the cache's connection for its protocol, mode
// and role (HELLO without arguments changes nothing; every user may send
// it).
func hello(ctx context.Context, do func(ctx context.Context, args ...any) *redis.Cmd) (helloReply, error) {
	m, err := do(ctx, "hello").Result()
	if err != nil {
		return helloReply{}, err
	}
	reply, ok := m.(map[any]any)
	if !ok {
		return helloReply{}, fmt.Errorf("view cache: HELLO answered %T", m)
	}
	var h helloReply
	h.proto, _ = reply["proto"].(int64)
	h.mode, _ = reply["mode"].(string)
	h.role, _ = reply["role"].(string)
	return h, nil
}

// onConnect turns tracking on for a new connection, which must speak
// RESP3 (pushes in band) to a master, and starts the cache afresh: what
// was read on an earlier connection gets no more invalidations. A failover
// client's connections to its Sentinels pass through.
func (v *viewCache) onConnect(ctx context.Context, cn *redis.Conn) error {
	h, err := hello(ctx, cn.Do)
	switch {
	case err != nil:
		return fmt.Errorf("view cache: HELLO: %w", err)
	case h.mode == "sentinel":
		return nil
	case h.proto != 3:
		return fmt.Errorf("view cache: the connection speaks RESP%d, not RESP3", h.proto)
	case h.role != "master":
		return errNotMaster
	}
	if err := cn.Do(ctx, "client", "tracking", "on").Err(); err != nil {
		return fmt.Errorf("view cache: CLIENT TRACKING: %w", err)
	}
	v.mu.Lock()
	v.reset(true)
	v.mu.Unlock()
	return nil
}

// run checks the connection every poll until close: a HELLO, before whose
// reply every queued invalidation is handled. A failed check drops the
// cache and stops fills until a check or a new connection succeeds; while
// checks fail (Redis away: nothing is cached, so nothing can go stale)
// they back off to one a second, which keeps a Redis outage from filling
// the log with go-redis's dial errors.
func (v *viewCache) run() {
	defer close(v.done)
	wait := v.poll
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
		if v.check() {
			wait = v.poll
		} else {
			wait = min(2*wait, max(v.poll, time.Second))
		}
		t.Reset(wait)
	}
}

// check asks the server on the cache's connection (dialling one, and so
// turning tracking on, if there is none) for its role, and reports whether
// it answered as a master. A replica (a master demoted by a failover)
// gets no more of the master's writes once its link breaks: the cache
// drops the client and dials again, which reaches the master the Sentinels
// name.
func (v *viewCache) check() bool {
	v.busy <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), max(v.poll, time.Second))
	h, err := hello(ctx, v.rc.Do)
	cancel()
	if err == nil && h.role != "master" {
		err = errNotMaster
		if rc, derr := v.dial(); derr == nil {
			v.rc.Close()
			v.rc = rc
		}
	}
	<-v.busy
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case err != nil && v.live:
		v.reset(false)
	case err == nil && !v.live:
		v.live = true // the same connection, still tracking: nothing was lost
	}
	return err == nil
}

// HandlePushNotification implements push.NotificationHandler for
// "invalidate": the keys changed, or nil for a flush of the database.
func (v *viewCache) HandlePushNotification(_ context.Context, _ push.NotificationHandlerContext, n []any) error {
	var keys []any
	if len(n) > 1 {
		keys, _ = n[1].([]any)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if keys == nil {
		v.reset(v.live)
		return nil
	}
	for _, k := range keys {
		s, _ := k.(string)
		id := viewKeyID(s)
		if id == "" {
			v.reset(v.live) // not a key the cache reads: trust nothing
			return nil
		}
		v.dropLocked(id)
	}
	return nil
}

// viewKeyID is the account id of an account or recovery key, else "".
func viewKeyID(key string) string {
	i := strings.LastIndex(key, "}:")
	if i < 0 {
		return ""
	}
	name := key[i+2:]
	for _, p := range []string{"account:", "recovery:"} {
		if id, ok := strings.CutPrefix(name, p); ok && account.ValidID(account.AccountPrefix, id) {
			return id
		}
	}
	return ""
}

// reset drops every entry and every read in flight.
func (v *viewCache) reset(live bool) {
	clear(v.entries)
	clear(v.pending)
	v.live = live
	v.stats.Resets++
}

func (v *viewCache) dropLocked(id string) {
	if _, ok := v.entries[id]; ok {
		v.stats.Invalidated++
	}
	delete(v.entries, id)
	delete(v.pending, id)
}

// forgetKeys drops the accounts whose account or recovery key is in keys:
// this node has just changed (or may have changed) them.
func (v *viewCache) forgetKeys(keys []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, k := range keys {
		if id := viewKeyID(k); id != "" {
			v.dropLocked(id)
		}
	}
}

func (v *viewCache) get(id string) (account.Account, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	a, ok := v.entries[id]
	if ok {
		v.stats.Hits++
	} else {
		v.stats.Misses++
	}
	return a, ok
}

// reserve starts a read of id that may fill the cache: false while the
// connection is not known good.
func (v *viewCache) reserve(id string) (uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.live {
		return 0, false
	}
	v.next++
	v.pending[id] = v.next
	return v.next, true
}

// fill keeps a's view if the read tok is still the one in flight for its
// account; cancel (a nil a) only ends the reservation.
func (v *viewCache) fill(id string, tok uint64, a *account.Account) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending[id] != tok {
		return
	}
	delete(v.pending, id)
	if a == nil || !v.live {
		return
	}
	if len(v.entries) >= v.max {
		for k := range v.entries { // any one
			delete(v.entries, k)
			break
		}
	}
	view := *a
	view.RecoverySalt = nil
	view.RecoveryCodes = make([][]byte, len(a.RecoveryCodes))
	v.entries[id] = view
	v.stats.Fills++
}

// read reads an account record and its recovery codes on the tracking
// connection, or errViewBusy when a miss or a check is using it.
func (v *viewCache) read(ctx context.Context, accountKey, recoveryKey string) (map[string]string, []string, error) {
	select {
	case v.busy <- struct{}{}:
	default:
		return nil, nil, errViewBusy
	}
	defer func() { <-v.busy }()
	fields, err := v.rc.HGetAll(ctx, accountKey).Result()
	if err != nil {
		return nil, nil, err
	}
	codes, err := v.rc.SMembers(ctx, recoveryKey).Result()
	return fields, codes, err
}

func (v *viewCache) snapshot() ViewCacheStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.stats
	st.Entries, st.Size = len(v.entries), v.max
	return st
}

func (v *viewCache) close() error {
	close(v.stop)
	<-v.done
	return v.rc.Close()
}

var _ account.ViewReader = (*Store)(nil)

// GetAccountView implements account.ViewReader: the account with id, from
// the view cache when Options.ViewCache is on, else as GetAccount. A view
// from the cache leaves out the recovery salt and digests (RecoveryCodes
// holds as many nil entries as the account has codes) and lags a change
// made on another node by at most about Options.ViewCachePoll; this
// node's own changes drop the account at once.
func (s *Store) GetAccountView(ctx context.Context, id string) (account.Account, error) {
	if s.views == nil {
		return s.GetAccount(ctx, id)
	}
	if !s.closed.Load() && ctx.Err() == nil {
		if a, ok := s.views.get(id); ok {
			return a, nil
		}
	}
	// A miss, a bad id, a closed store or a done context.
	return s.atAccountHome(ctx, id, s.viewMiss)
}

// viewMiss reads the account at h for the view cache: on the cache's own
// connection, so that Redis tracks its keys, and kept if no invalidation
// or reset came meanwhile; through the pipe, uncached, while the cache is
// not live or its connection is busy.
func (s *Store) viewMiss(ctx context.Context, h home) (account.Account, error) {
	tok, ok := s.views.reserve(h.acc)
	if !ok {
		return s.accountAt(ctx, h)
	}
	fields, codes, err := s.views.read(ctx, s.accountKey(h), s.recoveryKey(h))
	if errors.Is(err, errViewBusy) {
		s.views.fill(h.acc, tok, nil)
		return s.accountAt(ctx, h)
	}
	if err != nil {
		s.views.fill(h.acc, tok, nil)
		return account.Account{}, unavailable(err)
	}
	a, err := decodeAccountAt(h, fields, codes)
	if err != nil {
		s.views.fill(h.acc, tok, nil)
		return account.Account{}, err
	}
	s.views.fill(h.acc, tok, &a)
	return a, nil
}

// ViewCacheStats reports the view cache's counters (all zero, Size
// included, without one).
func (s *Store) ViewCacheStats() ViewCacheStats {
	if s.views == nil {
		return ViewCacheStats{}
	}
	return s.views.snapshot()
}

// run runs a script through the pipe, then drops from the view cache every
// account whose account or recovery key the script was given, whatever
// the outcome (it may have run): this node's own changes reach its cache
// at once.
func (s *Store) run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := s.q.Run(ctx, script, keys, args...)
	if s.views != nil {
		s.views.forgetKeys(keys)
	}
	return cmd
}
