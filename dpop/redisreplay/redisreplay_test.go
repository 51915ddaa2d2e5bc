package redisreplay_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/dpop/redisreplay"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:            srv.Addr(),
		MaxRetries:      -1, // fault tests want the first error
		DialTimeout:     time.Second,
		ReadTimeout:     time.Second,
		WriteTimeout:    time.Second,
		DisableIdentity: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newCache(t *testing.T, c redis.UniversalClient) *redisreplay.Cache {
	t.Helper()
	cache, err := redisreplay.New(c, redisreplay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cache
}

var now = time.Unix(1_700_000_000, 0)

func TestSeen(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	client := newClient(t, srv)
	cache := newCache(t, client)
	key := dpop.NewReplayKey("jkt", "the-jti")
	exp := now.Add(65 * time.Second)

	tests := []struct {
		name string
		key  dpop.ReplayKey
		want bool
	}{
		{name: "first use", key: key, want: false},
		{name: "replay", key: key, want: true},
		{name: "other jti", key: dpop.NewReplayKey("jkt", "other"), want: false},
		{name: "same jti, other key", key: dpop.NewReplayKey("jkt2", "the-jti"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cache.Seen(ctx, tt.key, now, exp)
			if err != nil || got != tt.want {
				t.Fatalf("Seen = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	// Key name: prefix, hash tag, hex digest; no raw jti anywhere.
	name := cache.Key(key)
	if name != "hallpass:{dpop}:jti:"+key.String() {
		t.Fatalf("Key = %q", name)
	}
	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("keys %q", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "jti-") || strings.Contains(k, "the-jti") || !strings.HasPrefix(k, "hallpass:{dpop}:jti:") {
			t.Fatalf("key %q", k)
		}
	}
	// The TTL is the rest of the window measured from the verifier's now.
	pttl, err := client.PTTL(ctx, name).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 64*time.Second || pttl > 65*time.Second {
		t.Fatalf("PTTL = %v, want about 65s", pttl)
	}
}

func TestSeenExpires(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	client := newClient(t, srv)
	cache := newCache(t, client)
	key := dpop.NewReplayKey("jkt", "short")
	// A window that already ended still gets an entry, of the minimum TTL.
	if seen, err := cache.Seen(ctx, key, now, now.Add(-time.Second)); seen || err != nil {
		t.Fatalf("Seen = %v, %v", seen, err)
	}
	if pttl, err := client.PTTL(ctx, cache.Key(key)).Result(); err != nil || pttl > time.Millisecond {
		t.Fatalf("PTTL = %v, %v; want at most 1ms", pttl, err)
	}
	// A 50 ms window: replay inside it, fresh after it.
	key2 := dpop.NewReplayKey("jkt", "fifty")
	if seen, err := cache.Seen(ctx, key2, now, now.Add(50*time.Millisecond)); seen || err != nil {
		t.Fatalf("Seen = %v, %v", seen, err)
	}
	if seen, err := cache.Seen(ctx, key2, now, now.Add(50*time.Millisecond)); !seen || err != nil {
		t.Fatalf("replay inside the window: Seen = %v, %v", seen, err)
	}
	time.Sleep(150 * time.Millisecond)
	if seen, err := cache.Seen(ctx, key2, now, now.Add(time.Minute)); seen || err != nil {
		t.Fatalf("after expiry: Seen = %v, %v", seen, err)
	}
}

// Two nodes (two clients) and many goroutines check the same keys: exactly
// one check wins each key.
func TestSeenConcurrentExactlyOneWins(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	nodes := []*redisreplay.Cache{newCache(t, newClient(t, srv)), newCache(t, newClient(t, srv))}
	const keys, racersPerNode = 50, 4
	var wins [keys]atomic.Int32
	var wg sync.WaitGroup
	for _, node := range nodes {
		for range racersPerNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range keys {
					seen, err := node.Seen(ctx, dpop.NewReplayKey("jkt", string(rune('A'+k))), now, now.Add(time.Minute))
					if err != nil {
						t.Error(err)
						return
					}
					if !seen {
						wins[k].Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Fatalf("key %d won %d times", k, n)
		}
	}
}

// End to end: a proof accepted on node A is a replay on node B, also when
// both see it at the same moment.
func TestVerifyAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	req := dpop.Request{Method: "POST", URL: "https://server.example.com/token"}
	nodeOpts := func() dpop.Options {
		return dpop.Options{Replay: newCache(t, newClient(t, srv))}
	}
	a, b := nodeOpts(), nodeOpts()

	proof, err := dpop.NewProof(priv, "POST", "https://server.example.com/token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dpop.Verify(context.Background(), proof, req, a); err != nil {
		t.Fatalf("node A: %v", err)
	}
	if _, err := dpop.Verify(context.Background(), proof, req, b); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("node B: %v, want ErrReplay", err)
	}

	proof2, _ := dpop.NewProof(priv, "POST", "https://server.example.com/token", "", "")
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 8 {
		opts := a
		if i%2 == 1 {
			opts = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := dpop.Verify(context.Background(), proof2, req, opts)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, dpop.ErrReplay):
				replayed.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 7 {
		t.Fatalf("%d accepted, %d replays; want 1 and 7", ok.Load(), replayed.Load())
	}
}

// When Redis is down, proofs are rejected (fail closed) with a server
// error; when it is back, verification resumes.
func TestFailClosed(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv)
	opts := dpop.Options{Replay: newCache(t, client)}
	req := dpop.Request{Method: "GET", URL: "https://api.example.com/r"}
	_, priv, _ := ed25519.GenerateKey(nil)
	mk := func() string {
		p, err := dpop.NewProof(priv, "GET", "https://api.example.com/r", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	srv.Stop(t)
	_, err := dpop.Verify(context.Background(), mk(), req, opts)
	if !errors.Is(err, dpop.ErrReplayCheck) || dpop.ErrorCode(err) != "" {
		t.Fatalf("Redis down: %v (code %q), want ErrReplayCheck", err, dpop.ErrorCode(err))
	}

	srv.Restart(t)
	var lastErr error
	for range 20 { // the pool may hand out a dead connection first
		if _, lastErr = dpop.Verify(context.Background(), mk(), req, opts); lastErr == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("after restart: %v", lastErr)
	}
}

// TestOddReplyFailsClosed: a SET NX answered neither OK nor nil (here
// QUEUED, from a connection left inside MULTI, as a misbehaving proxy or
// connection hook could leave it) says nothing about the proof, so the
// check must fail, every time: before the fix every such check, the replay
// of one proof included, was taken for a first use.
func TestOddReplyFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{
		Addr:            srv.Addr(),
		DisableIdentity: true,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			return cn.Process(ctx, redis.NewStatusCmd(ctx, "multi"))
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	cache := newCache(t, client)
	key := dpop.NewReplayKey("jkt", "queued")
	for i := range 3 {
		seen, err := cache.Seen(context.Background(), key, now, now.Add(time.Minute))
		if err == nil {
			t.Fatalf("check %d of one proof: Seen = %v, nil error; want an error (the reply was QUEUED)", i, seen)
		}
		if strings.Contains(err.Error(), "QUEUED") {
			t.Errorf("check %d: the error copies the reply: %v", i, err)
		}
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	proof, err := dpop.NewProof(priv, "GET", "https://api.example.com/r", "", "")
	if err != nil {
		t.Fatal(err)
	}
	req := dpop.Request{Method: "GET", URL: "https://api.example.com/r"}
	if _, err := dpop.Verify(context.Background(), proof, req, dpop.Options{Replay: cache}); !errors.Is(err, dpop.ErrReplayCheck) {
		t.Fatalf("Verify: %v, want ErrReplayCheck", err)
	}
}

func TestContextCancelled(t *testing.T) {
	srv := redistest.Start(t)
	cache := newCache(t, newClient(t, srv))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cache.Seen(ctx, dpop.NewReplayKey("a", "b"), now, now.Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNew(t *testing.T) {
	if _, err := redisreplay.New(nil, redisreplay.Options{}); err == nil {
		t.Fatal("nil client accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redisreplay.New(c, redisreplay.Options{KeyPrefix: "a b"}); err == nil {
		t.Fatal("prefix with space accepted")
	}
	cache, err := redisreplay.New(c, redisreplay.Options{KeyPrefix: "x:"})
	if err != nil {
		t.Fatal(err)
	}
	if k := dpop.NewReplayKey("a", "b"); cache.Key(k) != "x:"+k.String() {
		t.Fatalf("Key = %q", cache.Key(k))
	}
}
