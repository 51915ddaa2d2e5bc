package issuer_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/dpop/redisreplay"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/ratelimit/redislimit"
)

// redisBackend runs the store, the replay cache and the limiter on one
// private redis-server.
type redisBackend struct {
	srv     *redistest.Server
	client  *redis.Client
	noViews bool // the store without its view cache
}

func newRedisBackend(t testing.TB) backend { return &redisBackend{} }

func (b *redisBackend) name() string { return "redis" }

func (b *redisBackend) newClient(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: b.srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func (b *redisBackend) open(t testing.TB) account.Store {
	if b.srv == nil {
		b.srv = redistest.Start(t)
	}
	b.client = b.newClient(t)
	// The issuer bounds every call with its StoreTimeout; the store's own
	// bound is lifted so that the test decides (-race on two cores is slow).
	// The view cache is on, as `hallpass serve` has it on a redis:// store.
	opts := redisstore.Options{OpTimeout: 30 * time.Second, ViewCache: 1 << 10}
	if b.noViews {
		opts.ViewCache = 0
	}
	st, err := redisstore.New(b.client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (b *redisBackend) reopen(t testing.TB, old account.Store) account.Store {
	old.Close()
	return b.open(t)
}

func (b *redisBackend) replay(t testing.TB) dpop.ReplayCache {
	c, err := redisreplay.New(b.client, redisreplay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b *redisBackend) limiter(t testing.TB) ratelimit.Limiter {
	l, err := redislimit.New(b.client, redislimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
