package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

// TestHeldRefreshChangesNothing: a refresh script held on its way (by a
// proxy, as a slow network or a healed partition holds it) that reaches
// Redis after its caller gave up (503, "nothing changed") must change
// nothing, so the client's retry with the same token advances instead of
// being taken for a reuse that ends the session. Reproduction before the
// fix: the held script ran when the proxy let it through, advanced the
// counter with a grace window already past, and the retry logged the
// device out.
func TestHeldRefreshChangesNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	p := startHoldingProxy(t, srv.Addr(), "eval")
	c := newClient(t, p.addr)
	s, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acc, dev, sess := fixture(t, "held")
	if err := s.CreateAccount(context.Background(), acc, dev, sess); err != nil {
		t.Fatal(err)
	}
	req := account.RefreshRequest{DeviceID: dev.ID, Counter: sess.Counter, Now: time.Now().UTC(), Grace: 50 * time.Millisecond, Successor: []byte("s1")}
	// Another account's refresh loads the script into Redis, so that the
	// held EVALSHA runs when it arrives (not NOSCRIPT).
	acc2, dev2, sess2 := fixture(t, "warm")
	if err := s.CreateAccount(context.Background(), acc2, dev2, sess2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(context.Background(), account.RefreshRequest{DeviceID: dev2.ID, Counter: sess2.Counter, Now: time.Now().UTC(), Successor: []byte("w")}); err != nil {
		t.Fatal(err)
	}

	p.hold.Store(int64(500 * time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := s.Refresh(ctx, req); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("held refresh: %v, want ErrUnavailable", err)
	}
	p.hold.Store(0)
	time.Sleep(800 * time.Millisecond) // the proxy has let the held script through
	direct, err := redisstore.New(newClient(t, srv.Addr()), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.delivered.Load() == 0 {
		t.Fatal("the proxy delivered nothing held: the test would prove nothing")
	}
	got, err := direct.GetSession(context.Background(), dev.ID)
	if err != nil || got.Counter != sess.Counter {
		t.Fatalf("session after the held refresh: counter %d, %v; want %d", got.Counter, err, sess.Counter)
	}
	req.Now = time.Now().UTC()
	res, err := direct.Refresh(context.Background(), req)
	if err != nil || res.Outcome != account.RefreshAdvanced {
		t.Fatalf("the client's retry: %v, %v; want advanced", res.Outcome, err)
	}
}

// holdingProxy forwards TCP to Redis; while hold is set, the commands the
// client sends that contain match (say "eval": EVAL, EVALSHA) reach Redis
// that much later, even after the client hung up.
type holdingProxy struct {
	addr      string
	match     []byte       // lower case
	hold      atomic.Int64 // nanoseconds
	delivered atomic.Int64 // held chunks delivered
}

func startHoldingProxy(t *testing.T, upstream, match string) *holdingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{addr: ln.Addr().String(), match: []byte(match)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			cc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.pipe(cc, upstream) })
		}
	})
	return p
}

func (p *holdingProxy) pipe(cc net.Conn, upstream string) {
	defer cc.Close()
	uc, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer uc.Close()
	go func() { _, _ = io.Copy(cc, uc) }()
	buf := make([]byte, 64<<10)
	for {
		n, err := cc.Read(buf)
		if n > 0 {
			if d := time.Duration(p.hold.Load()); d > 0 && bytes.Contains(bytes.ToLower(buf[:n]), p.match) {
				time.Sleep(d)
				p.delivered.Add(1)
			}
			if _, werr := uc.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			time.Sleep(200 * time.Millisecond) // let Redis run what it was sent
			return
		}
	}
}

// TestHeldGetCallerAnswersInTime: the read of an authenticated request
// honours its deadline on the caller's goroutine (no goroutine to abandon):
// a Redis that does not answer is ErrUnavailable when the context ends,
// and the store answers again once Redis does.
func TestHeldGetCallerAnswersInTime(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	p := startHoldingProxy(t, srv.Addr(), "hgetall")
	s, err := redisstore.New(newClient(t, p.addr), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acc, dev, sess := fixture(t, "heldread")
	if err := s.CreateAccount(context.Background(), acc, dev, sess); err != nil {
		t.Fatal(err)
	}
	p.hold.Store(int64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := s.GetCaller(ctx, acc.ID, dev.ID); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("held GetCaller: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("held GetCaller answered after %v, want about its 100ms deadline", took)
	}
	p.hold.Store(0)
	time.Sleep(1200 * time.Millisecond) // the held chunk goes through
	if _, _, err := s.GetCaller(context.Background(), acc.ID, dev.ID); err != nil {
		t.Fatalf("GetCaller once Redis answers: %v", err)
	}
}

// TestPingRefusesAReadOnlyRedis: a Redis that answers but refuses writes
// is not ready (readyz). Reproduction before: PING answered PONG.
func TestPingRefusesAReadOnlyRedis(t *testing.T) {
	t.Parallel()
	c := newClient(t, redistest.Start(t).Addr())
	s, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := c.ConfigSet(context.Background(), "min-replicas-to-write", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("Ping of a Redis refusing writes: %v, want ErrUnavailable", err)
	}
}
