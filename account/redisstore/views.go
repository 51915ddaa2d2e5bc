package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

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
	// (or this node made one); Resets counts drops of everything one
	// connection read (the only one, but for a Cluster's masters): a new
	// connection, a failed check, a flush on the server.
	Invalidated, Resets uint64
	// Entries is the number of accounts held now, Size the most it holds
	// (Options.ViewCache; 0 without a cache).
	Entries, Size int
}

// viewCache keeps account views for GetAccountView with Redis
// server-assisted client-side caching (CLIENT TRACKING, default mode,
// RESP3). A miss reads the account and its recovery codes over a
// dedicated connection with tracking on (a viewLink: the one of a node or
// Sentinel store, one per master in a Cluster), so Redis remembers that
// this connection holds those keys and, when anyone changes one, queues
// an "invalidate" push on the same connection, ahead of any later reply.
// Each link's connection is read at least every poll (a HELLO, which also
// says the server is still a master), which hands each push to
// HandlePushNotification before the reply.
//
// Entries are only as good as the connection they were read on: Redis
// sends a key's invalidation to the connection that read it, and to no
// other. So every new connection of a link (OnConnect) and every failed
// check drops everything that link read, and nothing is filled through a
// link whose connection is not known good (live false). A fill is taken only
// if no invalidation of that account, and no reset, came between the
// read's reservation and its answer (the pending token), so a read that
// raced a write never outlives the write's invalidation. That also
// discards a read during which a push about an earlier write was handed
// over (the connection's next use after a change is often that read): the
// next miss fills.
type viewCache struct {
	max  int
	poll time.Duration
	// route is the link that reads key: the one link of a node or
	// Sentinel store, the key's master's in a Cluster.
	route func(ctx context.Context, key string) (*viewLink, error)

	linkMu sync.Mutex           // serialises adding links
	links  map[string]*viewLink // Cluster: by master address; guarded by mu

	mu      sync.Mutex
	closed  bool
	entries map[string]viewEntry   // by account id
	pending map[string]pendingRead // by account id: the read in flight
	next    uint64
	stats   ViewCacheStats
}

// viewEntry is a view and the link it was read through.
type viewEntry struct {
	view account.Account
	link *viewLink
}

// pendingRead is a read in flight that may fill the cache: its token and
// the link it reads through.
type pendingRead struct {
	tok  uint64
	link *viewLink
}

// newViewCache starts a view cache of up to size accounts. On a
// *redis.Client it reads through one connection of its own to c's server,
// or, with sentinel (the options c was made with), to the master its
// Sentinels name; on a *redis.ClusterClient through one connection per
// master, opened on the first miss there.
func newViewCache(c redis.UniversalClient, sentinel *redis.FailoverOptions, size int, poll time.Duration) (*viewCache, error) {
	if size < 1 || poll < 0 {
		return nil, errors.New("ViewCache below 1 or negative ViewCachePoll")
	}
	if poll == 0 {
		poll = DefaultViewCachePoll
	}
	v := &viewCache{max: size, poll: poll, links: map[string]*viewLink{},
		entries: map[string]viewEntry{}, pending: map[string]pendingRead{}}
	switch c := c.(type) {
	case *redis.ClusterClient:
		if sentinel != nil {
			return nil, errors.New("ViewCacheSentinel is for a Sentinel failover client, not a Cluster client")
		}
		v.route = v.clusterRoute(c)
		return v, nil
	case *redis.Client:
		switch failover := c.Options().Addr == failoverAddr; {
		case failover && sentinel == nil:
			return nil, errors.New("ViewCache on a Sentinel failover client needs ViewCacheSentinel")
		case !failover && sentinel != nil:
			return nil, errors.New("ViewCacheSentinel is for a Sentinel failover client, not a client of one node")
		}
		dial := nodeDialer(*c.Options())
		if sentinel != nil {
			dial = sentinelDialer(*sentinel)
		}
		l, err := v.addLink("", dial, true)
		if err != nil {
			return nil, err
		}
		v.route = func(context.Context, string) (*viewLink, error) { return l, nil }
		return v, nil
	}
	return nil, fmt.Errorf("ViewCache needs a *redis.Client or a *redis.ClusterClient, not %T", c)
}

// clusterRoute routes a key to the link of its master, as c's slot map
// names it, and opens that link on first use.
func (v *viewCache) clusterRoute(c *redis.ClusterClient) func(context.Context, string) (*viewLink, error) {
	return func(ctx context.Context, key string) (*viewLink, error) {
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		o := node.Options()
		v.mu.Lock()
		l := v.links[o.Addr]
		v.mu.Unlock()
		if l != nil {
			return l, nil
		}
		return v.addLink(o.Addr, nodeDialer(*o), false)
	}
}

// addLink opens the link for addr (once) and starts its checks: the first
// at once, before returning when wait is set (New's; a miss that opens a
// Cluster master's link does not wait for it, and reads uncached until
// that check passes).
func (v *viewCache) addLink(addr string, dial dialer, wait bool) (*viewLink, error) {
	v.linkMu.Lock()
	defer v.linkMu.Unlock()
	v.mu.Lock()
	l, closed := v.links[addr], v.closed
	v.mu.Unlock()
	if l != nil {
		return l, nil
	}
	if closed {
		return nil, errors.New("view cache closed")
	}
	l = &viewLink{v: v, dial: dial, cluster: addr != "", busy: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if l.rc, err = dial(l); err != nil {
		return nil, err
	}
	if wait {
		l.check() // connect now; if Redis is not there yet, run keeps trying
	}
	go l.run(!wait)
	v.mu.Lock()
	v.links[addr] = l
	v.mu.Unlock()
	return l, nil
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

// reset drops every entry and every read in flight of link l, and sets
// its liveness: what other masters' connections read stays.
func (v *viewCache) reset(l *viewLink, live bool) {
	for id, e := range v.entries {
		if e.link == l {
			delete(v.entries, id)
		}
	}
	for id, p := range v.pending {
		if p.link == l {
			delete(v.pending, id)
		}
	}
	l.live = live
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
	e, ok := v.entries[id]
	if ok {
		v.stats.Hits++
	} else {
		v.stats.Misses++
	}
	return e.view, ok
}

// reserve starts a read of id through l that may fill the cache: false
// while l's connection is not known good.
func (v *viewCache) reserve(id string, l *viewLink) (uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !l.live {
		return 0, false
	}
	v.next++
	v.pending[id] = pendingRead{tok: v.next, link: l}
	return v.next, true
}

// fill keeps a's view if the read tok is still the one in flight for its
// account and its link is still good; cancel (a nil a) only ends the
// reservation.
func (v *viewCache) fill(id string, tok uint64, a *account.Account) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, ok := v.pending[id]
	if !ok || p.tok != tok {
		return
	}
	delete(v.pending, id)
	if a == nil || !p.link.live {
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
	v.entries[id] = viewEntry{view: view, link: p.link}
	v.stats.Fills++
}

func (v *viewCache) snapshot() ViewCacheStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.stats
	st.Entries, st.Size = len(v.entries), v.max
	return st
}

// close stops every link; later misses read uncached.
func (v *viewCache) close() error {
	v.linkMu.Lock()
	defer v.linkMu.Unlock()
	v.mu.Lock()
	v.closed = true
	links := v.links
	v.links = map[string]*viewLink{}
	v.mu.Unlock()
	var errs []error
	for _, l := range links {
		errs = append(errs, l.close())
	}
	return errors.Join(errs...)
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

// viewMiss reads the account at h for the view cache: on the link of its
// master, so that Redis tracks its keys there, and kept if no
// invalidation or reset came meanwhile; through the pipe, uncached, while
// that link is not live or busy, or when the slot has moved.
func (s *Store) viewMiss(ctx context.Context, h home) (account.Account, error) {
	key := s.accountKey(h)
	l, err := s.views.route(ctx, key)
	if err != nil {
		return s.accountAt(ctx, h)
	}
	tok, ok := s.views.reserve(h.acc, l)
	if !ok {
		return s.accountAt(ctx, h)
	}
	fields, codes, err := l.read(ctx, key, s.recoveryKey(h))
	if errors.Is(err, errViewBusy) || isRedirect(err) {
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

// isRedirect reports a Cluster redirection (MOVED or ASK): the slot is
// served elsewhere now.
func isRedirect(err error) bool {
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	_, ok := redis.IsAskError(err)
	return ok
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
