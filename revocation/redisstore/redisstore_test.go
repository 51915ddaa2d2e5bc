package redisstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/revocation/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var prefixes atomic.Int64

// factory returns stores on c, each under its own prefix.
func factory(c redis.UniversalClient) storetest.Factory {
	return func(t *testing.T, cfg storetest.Config) revocation.Store {
		s, err := redisstore.New(c, redisstore.Options{
			Prefix:    fmt.Sprintf("test%d", prefixes.Add(1)),
			Now:       cfg.Now,
			MaxEvents: cfg.MaxEvents,
			// Generous: CI machines run many test binaries at once.
			OpTimeout: 10 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func newClusterClient(t testing.TB, addrs []string) *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, factory(newClient(t, srv.Addr())), storetest.Options{})
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	storetest.Run(t, factory(newClusterClient(t, cl.Addrs())), storetest.Options{StormSize: 20_000})
}
