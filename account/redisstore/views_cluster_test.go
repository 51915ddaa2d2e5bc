package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

// clusterViewNodes is viewNodes on a Cluster: two nodes, each with its own
// cluster client; cached has a view cache.
func clusterViewNodes(t *testing.T, addrs []string) (cached, other *redisstore.Store) {
	t.Helper()
	prefix := "views" + strings.ReplaceAll(t.Name(), "/", "_")
	newCluster := func() *redis.ClusterClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	var err error
	cached, err = redisstore.New(newCluster(), redisstore.Options{Prefix: prefix, ViewCache: 100, ViewCachePoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cached.Close() })
	if other, err = redisstore.New(newCluster(), redisstore.Options{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	return cached, other
}

// clusterViewAccount starts a 3-master Cluster with two nodes on it and
// an account whose view cached holds.
func clusterViewAccount(t *testing.T, name string) (cl *redistest.Cluster, cached, other *redisstore.Store, a account.Account) {
	t.Helper()
	cl = redistest.StartCluster(t, 3)
	cached, other = clusterViewNodes(t, cl.Addrs())
	a = createAccount(t, cached, name)
	filled(t, cached, a.ID)
	return cl, cached, other, a
}

// On three masters the cache reads each account through a connection to
// its master, and every master's invalidations reach it.
func TestViewCacheCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	cached, other := clusterViewNodes(t, cl.Addrs())
	ctx := context.Background()
	var accs []account.Account
	for i := range 9 { // nine name tags: every master holds some
		a := createAccount(t, cached, fmt.Sprintf("cl%d", i))
		filled(t, cached, a.ID)
		accs = append(accs, a)
	}
	if st := cached.ViewCacheStats(); st.Entries != len(accs) {
		t.Fatalf("stats %+v: want %d entries", st, len(accs))
	}
	for _, a := range accs {
		if err := other.SetBanned(ctx, a.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range accs {
		eventually(t, cached, a.ID, "ban elsewhere", func(v account.Account, err error) bool { return err == nil && v.Banned })
	}
	if st := cached.ViewCacheStats(); st.Invalidated < uint64(len(accs)) {
		t.Fatalf("stats %+v: want an invalidation per ban", st)
	}

	// One master's tracking connection is lost: the cache starts afresh.
	filled(t, cached, accs[0].ID)
	resets := cached.ViewCacheStats().Resets
	killTracking(t, masterOf(t, cl.Addrs(), cached, accs[0]))
	if err := other.SetBanned(ctx, accs[0].ID, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, accs[0].ID, "unban while the connection was down", func(v account.Account, err error) bool { return err == nil && !v.Banned })
	if cached.ViewCacheStats().Resets == resets {
		t.Fatal("the cache was not reset after a master's connection was lost")
	}
}

// A slot moves to another master (resharding): the source deletes the
// keys it hands over, which invalidates them; the next miss, routed to the
// old master by a stale slot map, is redirected (MOVED) and reads
// uncached through the cluster client, which learns the new map; later
// misses read, and cache, on the new master.
func TestViewCacheClusterSlotMoved(t *testing.T) {
	t.Parallel()
	cl, cached, other, a := clusterViewAccount(t, "mover")
	ctx := context.Background()
	src := masterOf(t, cl.Addrs(), cached, a)
	dst := cl.Addrs()[0]
	if dst == src {
		dst = cl.Addrs()[1]
	}
	// Another account on the same master, in another slot, read last: the
	// checks' probe stays on a slot that does not move, so the cache's
	// connection to src stays good and the next miss goes there.
	filled(t, cached, createAccount(t, cached, nameOn(t, cl, src, "mover")).ID)
	before := cached.ViewCacheStats()
	moveSlot(t, cl.Addrs(), "{"+redisstore.NameTag("mover")+"}", src, dst)
	deadline := time.Now().Add(3 * time.Second)
	for st := cached.ViewCacheStats(); st.Invalidated == before.Invalidated || st.Entries != before.Entries-1; st = cached.ViewCacheStats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v after %+v: the moved account was not dropped", st, before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := cached.ViewCacheStats(); st.Resets != before.Resets {
		t.Fatalf("stats %+v after %+v: the connection to the old master was reset, not the moved account dropped", st, before)
	}
	// The stale slot map sends this miss to the old master, which
	// redirects it: it must still answer.
	if v, err := viewOf(t, cached, a.ID); err != nil || v.ID != a.ID {
		t.Fatalf("view after the move: %+v, %v", v, err)
	}
	if err := other.SetBanned(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "ban on the new master", func(v account.Account, err error) bool { return err == nil && v.Banned })
	filled(t, cached, a.ID)
	if err := other.SetBanned(ctx, a.ID, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "unban on the new master", func(v account.Account, err error) bool { return err == nil && !v.Banned })
}

// nameOn is a username whose account lives on the master at addr, in
// another slot than not's.
func nameOn(t *testing.T, cl *redistest.Cluster, addr, not string) string {
	t.Helper()
	for i := range 1000 {
		name := fmt.Sprintf("on%d", i)
		if redisstore.NameTag(name) != redisstore.NameTag(not) && masterOf(t, cl.Addrs(), nil, account.Account{UsernameKey: name}) == addr {
			return name
		}
	}
	t.Fatal("no name on that master")
	return ""
}

// masterOf is the address of the master holding a's record.
func masterOf(t *testing.T, addrs []string, s *redisstore.Store, a account.Account) string {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	node, err := c.MasterForKey(context.Background(), "{"+redisstore.NameTag(a.UsernameKey)+"}")
	if err != nil {
		t.Fatal(err)
	}
	return node.Options().Addr
}

// moveSlot moves the slot of key from src to dst as redis-cli --cluster
// reshard does: IMPORTING and MIGRATING, MIGRATE of its keys, then the new
// owner on every node.
func moveSlot(t *testing.T, addrs []string, key, src, dst string) {
	t.Helper()
	ctx := context.Background()
	s, d := newClient(t, src), newClient(t, dst)
	slot, err := s.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	srcID, err := s.Do(ctx, "cluster", "myid").Text()
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := d.Do(ctx, "cluster", "myid").Text()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Do(ctx, "cluster", "setslot", slot, "importing", srcID).Err())
	must(s.Do(ctx, "cluster", "setslot", slot, "migrating", dstID).Err())
	keys, err := s.ClusterGetKeysInSlot(ctx, int(slot), 1000).Result()
	must(err)
	if len(keys) == 0 {
		t.Fatal("no keys in the slot")
	}
	host, port, _ := strings.Cut(dst, ":")
	args := []any{"migrate", host, port, "", 0, 5000, "keys"}
	for _, k := range keys {
		args = append(args, k)
	}
	must(s.Do(ctx, args...).Err())
	for _, addr := range append([]string{dst, src}, addrs...) {
		must(newClient(t, addr).Do(ctx, "cluster", "setslot", slot, "node", dstID).Err())
	}
}

// A master stops serving a slot without handing its keys over (here
// CLUSTER DELSLOTS; in life a failover or a partition that leaves it out
// of the cluster): no invalidation comes, so the check's read of the
// last key read there must see it and drop what that master gave.
func TestViewCacheClusterProbe(t *testing.T) {
	t.Parallel()
	cl, cached, _, a := clusterViewAccount(t, "prober")
	ctx := context.Background()
	src := newClient(t, masterOf(t, cl.Addrs(), cached, a))
	slot, err := src.ClusterKeySlot(ctx, "{"+redisstore.NameTag("prober")+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	resets := cached.ViewCacheStats().Resets
	if err := src.Do(ctx, "cluster", "delslots", slot).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, cached, a.ID, "dropped once the slot is not served", func(account.Account, error) bool {
		st := cached.ViewCacheStats()
		return st.Entries == 0 && st.Resets > resets
	})
	if err := src.Do(ctx, "cluster", "addslots", slot).Err(); err != nil {
		t.Fatal(err)
	}
	filled(t, cached, a.ID)
}

// The slot of the last key read through a master's connection moves away:
// the check's read of it is redirected, which drops what that master gave
// once; then the connection serves the master's other slots again.
func TestViewCacheClusterProbeMoved(t *testing.T) {
	t.Parallel()
	cl, cached, _, a := clusterViewAccount(t, "prober")
	src := masterOf(t, cl.Addrs(), cached, a)
	dst := cl.Addrs()[0]
	if dst == src {
		dst = cl.Addrs()[1]
	}
	resets := cached.ViewCacheStats().Resets
	moveSlot(t, cl.Addrs(), "{"+redisstore.NameTag("prober")+"}", src, dst)
	deadline := time.Now().Add(3 * time.Second)
	for cached.ViewCacheStats().Resets == resets {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the redirected probe did not drop the master's views", cached.ViewCacheStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	filled(t, cached, createAccount(t, cached, nameOn(t, cl, src, "prober")).ID)
}
