package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

// viewNodes is two issuer nodes on one Redis and one key prefix: cached
// reads views through its view cache, other is a node without one.
func viewNodes(t *testing.T, addr string, size int) (cached, other *redisstore.Store) {
	t.Helper()
	prefix := "views" + strings.ReplaceAll(t.Name(), "/", "_")
	var err error
	cached, err = redisstore.New(newClient(t, addr), redisstore.Options{Prefix: prefix, ViewCache: size, ViewCachePoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cached.Close() })
	if other, err = redisstore.New(newClient(t, addr), redisstore.Options{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	return cached, other
}

func createAccount(t *testing.T, s *redisstore.Store, name string) account.Account {
	t.Helper()
	a, d, sess := fixture(t, name)
	a.RecoverySalt = []byte("salt-salt-salt-s")
	a.RecoveryCodes = [][]byte{make([]byte, 32), append(make([]byte, 31), 1)}
	if err := s.CreateAccount(context.Background(), a, d, sess); err != nil {
		t.Fatal(err)
	}
	return a
}

// viewOf reads id through GetAccountView.
func viewOf(t *testing.T, s *redisstore.Store, id string) (account.Account, error) {
	t.Helper()
	return s.GetAccountView(context.Background(), id)
}

// eventually polls GetAccountView until ok accepts the view, for at most
// 3s (the cache's poll is 20ms: anything near the bound is a failure to
// invalidate, not a slow machine).
func eventually(t *testing.T, s *redisstore.Store, id string, what string, ok func(account.Account, error) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		a, err := viewOf(t, s, id)
		if ok(a, err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %+v, %v after 3s", what, a, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// filled reads id until a read is a hit: the view is in the cache. (A
// miss reads uncached while the cache's check has the connection.)
func filled(t *testing.T, s *redisstore.Store, id string) {
	t.Helper()
	eventually(t, s, id, "filled", func(_ account.Account, err error) bool {
		hits := s.ViewCacheStats().Hits
		_, err2 := viewOf(t, s, id)
		return err == nil && err2 == nil && s.ViewCacheStats().Hits > hits
	})
}

func TestViewCacheHits(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cached, _ := viewNodes(t, srv.Addr(), 100)
	a := createAccount(t, cached, "alice")
	filled(t, cached, a.ID)
	before := cached.ViewCacheStats()
	for range 3 {
		v, err := viewOf(t, cached, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.ID != a.ID || v.Username != "alice" || v.UsernameKey != "alice" || v.Banned || v.RecoveryCodesLeft() != 2 {
			t.Fatalf("view %+v of %+v", v, a)
		}
	}
	st := cached.ViewCacheStats()
	if st.Fills != 1 || st.Hits != before.Hits+3 || st.Misses != before.Misses || st.Entries != 1 {
		t.Fatalf("stats %+v (before %+v), want 1 fill and 3 more hits", st, before)
	}
	v, _ := viewOf(t, cached, a.ID)
	if v.RecoverySalt != nil || v.RecoveryCodes[0] != nil {
		t.Fatalf("a cached view holds the recovery salt or digests: %+v", v)
	}
	if _, err := viewOf(t, cached, "acc_"+strings.Repeat("A", 26)); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("missing account: %v", err)
	}
}

// This node's own changes reach its views at once, with no wait for Redis.
func TestViewCacheLocalWrites(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cached, _ := viewNodes(t, srv.Addr(), 100)
	ctx := context.Background()
	now := time.Now()
	a := createAccount(t, cached, "bob")
	steps := []struct {
		name  string
		do    func() error
		check func(account.Account, error) bool
	}{
		{"rename", func() error { return cached.RenameAccount(ctx, a.ID, "Bobby", "bobby", now, now.Add(time.Hour)) },
			func(v account.Account, err error) bool { return err == nil && v.Username == "Bobby" }},
		{"ban", func() error { return cached.SetBanned(ctx, a.ID, true) },
			func(v account.Account, err error) bool { return err == nil && v.Banned }},
		{"new recovery codes", func() error {
			return cached.SetRecoveryCodes(ctx, a.ID, []byte("salt-salt-salt-2"), [][]byte{make([]byte, 32)})
		}, func(v account.Account, err error) bool { return err == nil && v.RecoveryCodesLeft() == 1 }},
		{"delete", func() error { return cached.DeleteAccount(ctx, a.ID, now, now.Add(time.Hour)) },
			func(_ account.Account, err error) bool { return errors.Is(err, account.ErrNotFound) }},
	}
	for _, step := range steps {
		filled(t, cached, a.ID)
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if v, err := viewOf(t, cached, a.ID); !step.check(v, err) {
			t.Fatalf("right after %s on this node: %+v, %v", step.name, v, err)
		}
	}
}

// Changes made through another node reach the views by Redis's
// invalidations. Without them a filled view would stay as it was.
func TestViewCacheRemoteWrites(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cached, other := viewNodes(t, srv.Addr(), 100)
	ctx := context.Background()
	now := time.Now()
	a := createAccount(t, cached, "carol")
	fill := func() { t.Helper(); filled(t, cached, a.ID) }
	fill()
	if err := other.RenameAccount(ctx, a.ID, "Caro", "caro", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "rename elsewhere", func(v account.Account, err error) bool { return err == nil && v.Username == "Caro" })
	fill()
	if err := other.SetBanned(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "ban elsewhere", func(v account.Account, err error) bool { return err == nil && v.Banned })
	fill()
	if err := other.AddRecoveryCode(ctx, a.ID, []byte("salt-salt-salt-s"), append(make([]byte, 31), 2), 10); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "recovery code added elsewhere", func(v account.Account, err error) bool { return err == nil && v.RecoveryCodesLeft() == 3 })
	fill()
	if err := other.DeleteAccount(ctx, a.ID, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "delete elsewhere", func(_ account.Account, err error) bool { return errors.Is(err, account.ErrNotFound) })
	if st := cached.ViewCacheStats(); st.Invalidated < 4 {
		t.Fatalf("stats %+v: want an invalidation per change", st)
	}
}

// killTracking kills the connections with client tracking on (flag t):
// the view cache's.
func killTracking(t *testing.T, addr string) {
	t.Helper()
	c := newClient(t, addr)
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		var id, flags string
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "flags="); ok {
				flags = v
			}
		}
		if strings.Contains(flags, "t") {
			if err := c.Do(context.Background(), "client", "kill", "id", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no tracking connection in %s", list)
	}
}

// A lost connection loses the invalidations meant for it: the cache must
// drop everything it read there, and not serve a change made meanwhile as
// if nothing had happened.
func TestViewCacheConnectionLost(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cached, other := viewNodes(t, srv.Addr(), 100)
	ctx := context.Background()
	a := createAccount(t, cached, "dave")
	filled(t, cached, a.ID)
	resets := cached.ViewCacheStats().Resets
	killTracking(t, srv.Addr())
	if err := other.SetBanned(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "ban while the cache's connection was down", func(v account.Account, err error) bool { return err == nil && v.Banned })
	if cached.ViewCacheStats().Resets == resets {
		t.Fatal("the cache was not reset after its connection was lost")
	}
	// And it caches again on the new connection.
	eventually(t, cached, a.ID, "filled again", func(account.Account, error) bool { return cached.ViewCacheStats().Entries == 1 })
}

// A flush of the database is an invalidation of everything.
func TestViewCacheFlush(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t) // its own server: FLUSHALL
	cached, _ := viewNodes(t, srv.Addr(), 100)
	a := createAccount(t, cached, "erin")
	filled(t, cached, a.ID)
	if err := newClient(t, srv.Addr()).FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "after FLUSHALL", func(_ account.Account, err error) bool { return errors.Is(err, account.ErrNotFound) })
}

func TestViewCacheBounded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cached, _ := viewNodes(t, srv.Addr(), 2)
	for _, name := range []string{"f1", "f2", "f3", "f4"} {
		a := createAccount(t, cached, name)
		// A miss reads uncached while the cache's check has the
		// connection: read until this one is filled.
		fills := cached.ViewCacheStats().Fills
		eventually(t, cached, a.ID, "filled", func(_ account.Account, err error) bool {
			return err == nil && cached.ViewCacheStats().Fills > fills
		})
	}
	if st := cached.ViewCacheStats(); st.Fills != 4 || st.Entries != 2 {
		t.Fatalf("stats %+v, want 4 fills and 2 entries held", st)
	}
}

// Readers and a writer on another node race; once the writer stops, every
// view converges on its last write.
func TestViewCacheRace(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cached, other := viewNodes(t, srv.Addr(), 100)
	ctx := context.Background()
	a := createAccount(t, cached, "gina")
	filled(t, cached, a.ID) // not banned
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := viewOf(t, cached, a.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	last := false
	for i := range 51 { // the last write bans
		last = i%2 == 0
		if err := other.SetBanned(ctx, a.ID, last); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	eventually(t, cached, a.ID, "after the last write", func(v account.Account, err error) bool { return err == nil && v.Banned == last })
	// Stable: the view does not flip back.
	for range 20 {
		if v, err := viewOf(t, cached, a.ID); err != nil || v.Banned != last {
			t.Fatalf("view went back: %+v, %v", v, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestViewCacheOptions(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}, ContextTimeoutEnabled: true})
	defer cluster.Close()
	failover := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{srv.Addr()}, ContextTimeoutEnabled: true})
	defer failover.Close()
	tests := []struct {
		name string
		c    redis.UniversalClient
		opts redisstore.Options
		want string
	}{
		{"failover client without its options", failover, redisstore.Options{ViewCache: 10}, "needs ViewCacheSentinel"},
		{"failover options with a cluster client", cluster, redisstore.Options{ViewCache: 10, ViewCacheSentinel: &redis.FailoverOptions{MasterName: "m"}}, "not a Cluster client"},
		{"failover options with a node client", newClient(t, srv.Addr()), redisstore.Options{ViewCache: 10, ViewCacheSentinel: &redis.FailoverOptions{MasterName: "m"}}, "not a client of one node"},
		{"negative size", newClient(t, srv.Addr()), redisstore.Options{ViewCache: -1}, "ViewCache below 1"},
		{"poll without size", newClient(t, srv.Addr()), redisstore.Options{ViewCachePoll: time.Second}, "ViewCache below 1"},
		{"negative poll", newClient(t, srv.Addr()), redisstore.Options{ViewCache: 1, ViewCachePoll: -time.Second}, "negative ViewCachePoll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.New(tt.c, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
		})
	}
}

// Redis goes away: within the check's bound the cache is dropped and
// views are ErrUnavailable like every other read (a restarted Redis may
// have lost the account); once Redis is back the cache fills again.
func TestViewCacheOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.StartPersistent(t) // the account survives the restart
	cached, _ := viewNodes(t, srv.Addr(), 100)
	a := createAccount(t, cached, "hana")
	filled(t, cached, a.ID)
	srv.Stop(t)
	eventually(t, cached, a.ID, "Redis stopped", func(_ account.Account, err error) bool { return errors.Is(err, account.ErrUnavailable) })
	if st := cached.ViewCacheStats(); st.Entries != 0 {
		t.Fatalf("stats %+v: entries kept with Redis away", st)
	}
	srv.Restart(t)
	eventually(t, cached, a.ID, "Redis back", func(v account.Account, err error) bool { return err == nil && v.Username == "hana" })
	filled(t, cached, a.ID)
}

// Under an ACL without CLIENT, the cache cannot track: it stays empty and
// every view is read from Redis, correct and uncached.
func TestViewCacheWithoutTracking(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	if err := newClient(t, srv.Addr()).Do(ctx, "acl", "setuser", "app", "on", ">app-password", "~*", "&*", "+@all", "-client").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "app", Password: "app-password", ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	s, err := redisstore.New(c, redisstore.Options{Prefix: "acl", ViewCache: 10, ViewCachePoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a := createAccount(t, s, "ines")
	for range 5 {
		if v, err := viewOf(t, s, a.ID); err != nil || v.Username != "ines" {
			t.Fatalf("view %+v, %v", v, err)
		}
	}
	if err := s.RenameAccount(ctx, a.ID, "Ines", "ines2", time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, err := viewOf(t, s, a.ID); err != nil || v.Username != "Ines" {
		t.Fatalf("after rename: %+v, %v", v, err)
	}
	if st := s.ViewCacheStats(); st.Hits != 0 || st.Fills != 0 {
		t.Fatalf("stats %+v: cached without tracking", st)
	}
}
