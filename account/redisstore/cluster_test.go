package redisstore_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/storetest"
	"github.com/hallpass/hallpass/internal/redistest"
)

// A one-node Redis Cluster refuses multi-key commands and scripts whose keys
// do not share a slot (CROSSSLOT), as a real cluster does, so the
// conformance suite on it proves the hash tags.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	addr := redistest.StartCluster(t, 1).Addrs()[0]
	storetest.Run(t, &factory{
		newClient: func(t *testing.T) redis.UniversalClient {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
		prefixes: map[account.Store]string{},
	})
}

// Three masters: a renamed account's name records live on other nodes
// than the account, so renames and deletions cross nodes.
func TestConformanceCluster3(t *testing.T) {
	t.Parallel()
	addrs := redistest.StartCluster(t, 3).Addrs()
	storetest.Run(t, &factory{
		newClient: func(t *testing.T) redis.UniversalClient {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
		prefixes: map[account.Store]string{},
	})
}

// The cluster node really refuses keys of two slots in one script, so the
// conformance run above is meaningful.
func TestClusterRefusesCrossSlot(t *testing.T) {
	t.Parallel()
	addr := redistest.StartCluster(t, 1).Addrs()[0]
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	err := c.Eval(t.Context(), "return 1", []string{"{a}x", "{b}y"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("cross-slot script: %v, want CROSSSLOT", err)
	}
}
