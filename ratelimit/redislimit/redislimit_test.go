package redislimit_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/ratelimit/limittest"
	"github.com/hallpass/hallpass/ratelimit/redislimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	var n atomic.Int64
	limittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		l, err := redislimit.New(newClient(t, srv.Addr()), redislimit.Options{Prefix: fmt.Sprintf("t%d", n.Add(1)), OpTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

// Two nodes (two clients, two limiters) share one budget.
func TestSharedBudget(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	key := []byte("shared secret")
	a, _ := redislimit.New(newClient(t, srv.Addr()), redislimit.Options{HashKey: key})
	b, _ := redislimit.New(newClient(t, srv.Addr()), redislimit.Options{HashKey: key})
	r := ratelimit.Rule{Limit: 4, Per: time.Hour}
	now := time.Now()
	allowed := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		d, err := l.Allow(t.Context(), "203.0.113.7", r, now)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 4 {
		t.Fatalf("%d allowed across two nodes, want 4", allowed)
	}
	// Keys are digests: no raw IP in Redis, and they expire.
	c := newClient(t, srv.Addr())
	keys := c.Keys(t.Context(), "*").Val()
	if len(keys) != 1 || strings.Contains(keys[0], "203.0.113.7") || !strings.HasPrefix(keys[0], "hallpass:rl:{") {
		t.Fatalf("keys = %q", keys)
	}
	if ttl := c.PTTL(t.Context(), keys[0]).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("key TTL %v, want within the period", ttl)
	}
	// Another HashKey is another budget.
	other, _ := redislimit.New(newClient(t, srv.Addr()), redislimit.Options{HashKey: []byte("other")})
	if d, err := other.Allow(t.Context(), "203.0.113.7", r, now); err != nil || !d.Allowed {
		t.Fatalf("other HashKey: %+v, %v", d, err)
	}
}

// Redis down: an error wrapping ErrUnavailable within the timeout, no
// decision; Redis back: decisions again.
func TestOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const opTimeout = 500 * time.Millisecond
	l, err := redislimit.New(newClient(t, srv.Addr()), redislimit.Options{OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	r := ratelimit.Rule{Limit: 1, Per: time.Hour}
	if _, err := l.Allow(t.Context(), "k", r, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	start := time.Now()
	d, err := l.Allow(t.Context(), "k", r, time.Now())
	if !errors.Is(err, ratelimit.ErrUnavailable) || d.Allowed {
		t.Fatalf("Allow with Redis down: %+v, %v", d, err)
	}
	if el := time.Since(start); el > opTimeout+time.Second {
		t.Fatalf("Allow with Redis down took %v", el)
	}
	srv.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := l.Allow(t.Context(), "k", r, time.Now())
		if err == nil {
			if !d.Allowed { // the restarted Redis is empty
				t.Fatalf("after restart: %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	bad := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer bad.Close()
	if _, err := redislimit.New(bad, redislimit.Options{}); err == nil {
		t.Error("New accepted a client without ContextTimeoutEnabled")
	}
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	for name, opts := range map[string]redislimit.Options{
		"brace in prefix":  {Prefix: "x{"},
		"negative timeout": {OpTimeout: -1},
	} {
		if _, err := redislimit.New(ok, opts); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := redislimit.New(nil, redislimit.Options{}); err == nil {
		t.Error("New accepted a nil client")
	}
}
