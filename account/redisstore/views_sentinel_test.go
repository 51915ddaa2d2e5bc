package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

// A Sentinel failover while the old master still answers as one (the
// Sentinel turns it into a replica only seconds later; here it is kept
// apart with REPLICAOF NO ONE, as in a split): the cache must leave it
// when the Sentinels announce the new master, or a change written there
// never reaches the cache.
func TestViewCacheSentinelFailover(t *testing.T) {
	t.Parallel()
	sen := redistest.StartSentinel(t)
	fo := &redis.FailoverOptions{MasterName: redistest.SentinelMaster, SentinelAddrs: []string{sen.Addr()}, ContextTimeoutEnabled: true}
	client := redis.NewFailoverClient(fo)
	t.Cleanup(func() { _ = client.Close() })
	prefix := "sentinel" + t.Name()
	cached, err := redisstore.New(client, redisstore.Options{Prefix: prefix, ViewCache: 100, ViewCachePoll: 20 * time.Millisecond, ViewCacheSentinel: fo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cached.Close() })
	a := createAccount(t, cached, "frank")
	filled(t, cached, a.ID)
	before := cached.ViewCacheStats().Resets
	// Replication is asynchronous: the failover must not lose the account.
	onReplica, err := redisstore.New(newClient(t, sen.Replica.Addr()), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, err := onReplica.GetAccount(context.Background(), a.ID); err != nil; _, err = onReplica.GetAccount(context.Background(), a.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the replica never had the account: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}

	oldMaster := sen.Master.Addr()
	sen.Failover(t)
	if err := newClient(t, oldMaster).Do(context.Background(), "replicaof", "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
	// Another node, already on the new master.
	other, err := redisstore.New(newClient(t, sen.Master.Addr()), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := other.RenameAccount(context.Background(), a.ID, "Frankie", "frankie", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "rename on the new master", func(v account.Account, err error) bool { return err == nil && v.Username == "Frankie" })
	if st := cached.ViewCacheStats(); st.Resets <= before {
		t.Fatalf("stats %+v: the cache did not start afresh on the new master", st)
	}
	filled(t, cached, a.ID) // and it caches there
}

// The cache's server becomes a replica (a failover behind one address):
// the cache empties and keeps nothing while it is one, and fills again
// once the server is a master.
func TestViewCacheNotOnAReplica(t *testing.T) {
	t.Parallel()
	srv, upstream := redistest.Start(t), redistest.Start(t)
	cached, _ := viewNodes(t, srv.Addr(), 100)
	a := createAccount(t, cached, "gina")
	filled(t, cached, a.ID)
	before := cached.ViewCacheStats()

	admin := newClient(t, srv.Addr())
	host, port, _ := strings.Cut(upstream.Addr(), ":")
	if err := admin.Do(context.Background(), "replicaof", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for cached.ViewCacheStats().Resets == before.Resets {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the cache was not dropped within 3s of REPLICAOF", cached.ViewCacheStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	mid := cached.ViewCacheStats()
	for range 20 {
		_, _ = viewOf(t, cached, a.ID)
		time.Sleep(5 * time.Millisecond)
	}
	if st := cached.ViewCacheStats(); st.Fills != mid.Fills || st.Hits != mid.Hits || st.Entries != 0 {
		t.Fatalf("stats %+v after %+v: the cache kept views read from a replica", st, mid)
	}

	if err := admin.Do(context.Background(), "replicaof", "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
	b := createAccount(t, cached, "gina2")
	filled(t, cached, b.ID)
}
