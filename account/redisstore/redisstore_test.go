package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/account/storetest"
	"github.com/hallpass/hallpass/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// factory gives every store its own key prefix on one server; Reopen builds
// a new client and store on the same prefix.
type factory struct {
	newClient func(t *testing.T) redis.UniversalClient
	n         atomic.Int64
	mu        sync.Mutex
	prefixes  map[account.Store]string
}

func (f *factory) open(t *testing.T, prefix string) account.Store {
	t.Helper()
	// The suite checks behaviour, not latency (TestOutage and TestHungRedis
	// do): a generous bound keeps 200 concurrent signups under -race on a
	// loaded machine from timing out.
	s, err := redisstore.New(f.newClient(t), redisstore.Options{Prefix: prefix, OpTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f.mu.Lock()
	f.prefixes[s] = prefix
	f.mu.Unlock()
	return s
}

func (f *factory) New(t *testing.T) account.Store {
	return f.open(t, fmt.Sprintf("test%d", f.n.Add(1)))
}

func (f *factory) Reopen(t *testing.T, old account.Store) account.Store {
	f.mu.Lock()
	prefix := f.prefixes[old]
	f.mu.Unlock()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	return f.open(t, prefix)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	storetest.Run(t, &factory{
		newClient: func(t *testing.T) redis.UniversalClient { return newClient(t, srv.Addr()) },
		prefixes:  map[account.Store]string{},
	})
}

// go-redis speaks RESP3 by default; RESP2 clients (older proxies) must see
// the same replies from the scripts.
func TestConformanceRESP2(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	storetest.Run(t, &factory{
		newClient: func(t *testing.T) redis.UniversalClient {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
		prefixes: map[account.Store]string{},
	})
}

func fixture(t *testing.T, name string) (account.Account, account.Device, account.Session) {
	t.Helper()
	now := time.Now()
	accID, _ := account.NewID(account.AccountPrefix, nil)
	devID, _ := account.NewID(account.DevicePrefix, nil)
	return account.Account{ID: accID, Username: name, UsernameKey: name, Created: now},
		account.Device{ID: devID, AccountID: accID, JKT: "jkt", Created: now},
		account.Session{DeviceID: devID, AccountID: accID, JKT: "jkt", Counter: 1, Created: now, Expires: now.Add(time.Hour)}
}

// Redis stops mid-way: every operation fails with ErrUnavailable within the
// timeout; once Redis is back the same store works without any reconnect
// code.
func TestOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const opTimeout = 500 * time.Millisecond
	s, err := redisstore.New(newClient(t, srv.Addr()), redisstore.Options{OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	if err := s.CreateAccount(ctx, acc, dev, sess); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	acc2, dev2, sess2 := fixture(t, "bob")
	ops := map[string]func() error{
		"CreateAccount": func() error { return s.CreateAccount(ctx, acc2, dev2, sess2) },
		"Refresh": func() error {
			_, err := s.Refresh(ctx, account.RefreshRequest{DeviceID: dev.ID, Counter: 1, Now: time.Now(), Successor: []byte("x")})
			return err
		},
		"GetAccount": func() error { _, err := s.GetAccount(ctx, acc.ID); return err },
		"Ping":       func() error { return s.Ping(ctx) },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if !errors.Is(err, account.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > opTimeout+time.Second {
			t.Errorf("%s with Redis down took %v", name, d)
		}
	}

	srv.Restart(t) // an empty Redis on the same port
	deadline := time.Now().Add(5 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store does not recover after Redis restarts")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.CreateAccount(ctx, acc2, dev2, sess2); err != nil {
		t.Fatalf("CreateAccount after restart: %v", err)
	}
	if _, err := s.GetAccount(ctx, acc2.ID); err != nil {
		t.Fatalf("GetAccount after restart: %v", err)
	}
}

// A Redis that accepts connections and never answers (hung, or a black
// hole): operations still end within OpTimeout, or sooner with a caller's
// deadline.
func TestHungRedis(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	c := redis.NewClient(&redis.Options{Addr: l.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer c.Close()
	// Far apart from the caller's 50 ms deadline below, so that a loaded
	// CI machine cannot blur "honoured the deadline" and "waited for
	// OpTimeout".
	const opTimeout = 2 * time.Second
	s, err := redisstore.New(c, redisstore.Options{OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	acc, dev, sess := fixture(t, "alice")
	start := time.Now()
	if err := s.CreateAccount(t.Context(), acc, dev, sess); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("CreateAccount on a hung Redis: %v", err)
	}
	if d := time.Since(start); d > opTimeout+time.Second {
		t.Fatalf("CreateAccount on a hung Redis took %v", d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := s.Refresh(ctx, account.RefreshRequest{DeviceID: dev.ID, Counter: 1, Now: time.Now(), Successor: []byte("x")}); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("Refresh on a hung Redis: %v", err)
	}
	if d := time.Since(start); d > opTimeout/2 {
		t.Fatalf("Refresh on a hung Redis ignored the caller's deadline: %v", d)
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redisstore.New(c, redisstore.Options{}); err == nil {
		t.Error("New accepted a client without ContextTimeoutEnabled")
	}
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	for name, opts := range map[string]redisstore.Options{
		"brace in prefix":   {Prefix: "a{b"},
		"negative timeout":  {OpTimeout: -time.Second},
		"closing brace too": {Prefix: "}"},
	} {
		if _, err := redisstore.New(ok, opts); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := redisstore.New(nil, redisstore.Options{}); err == nil {
		t.Error("New accepted a nil client")
	}
}

// BenchmarkRefresh: one advancing refresh per op (index lookup + script),
// next to the floor of one Redis round trip measured in the same run.
func BenchmarkRefresh(b *testing.B) {
	srv := redistest.Start(b)
	c := newClient(b, srv.Addr())
	b.Run("ping-baseline", func(b *testing.B) {
		for range b.N {
			if err := c.Ping(b.Context()).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("refresh", func(b *testing.B) {
		s, err := redisstore.New(c, redisstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		accID, _ := account.NewID(account.AccountPrefix, nil)
		devID, _ := account.NewID(account.DevicePrefix, nil)
		err = s.CreateAccount(b.Context(),
			account.Account{ID: accID, Username: "bench", UsernameKey: "bench" + accID, Created: now},
			account.Device{ID: devID, AccountID: accID, JKT: "j", Created: now},
			account.Session{DeviceID: devID, AccountID: accID, JKT: "j", Counter: 1, Created: now, Expires: now.Add(time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		succ := make([]byte, 200)
		b.ResetTimer()
		for i := range b.N {
			res, err := s.Refresh(b.Context(), account.RefreshRequest{DeviceID: devID, Counter: uint64(i + 1), Now: now, Successor: succ})
			if err != nil || res.Outcome != account.RefreshAdvanced {
				b.Fatal(res.Outcome, err)
			}
		}
	})
}
