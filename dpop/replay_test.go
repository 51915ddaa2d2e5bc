package dpop

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func keyN(n uint64) ReplayKey {
	var k ReplayKey
	binary.BigEndian.PutUint64(k[:], n)
	return k
}

func TestMemoryReplayCache(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	exp := testNow.Add(time.Minute)
	tests := []struct {
		name string
		key  ReplayKey
		now  time.Time
		want bool
	}{
		{name: "first use", key: keyN(1), now: testNow, want: false},
		{name: "replay", key: keyN(1), now: testNow.Add(time.Second), want: true},
		{name: "replay just before expiry", key: keyN(1), now: exp.Add(-time.Nanosecond), want: true},
		{name: "other key", key: keyN(2), now: testNow, want: false},
		{name: "after expiry the window is over", key: keyN(1), now: exp, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Seen(ctx, tt.key, tt.now, exp)
			if err != nil || got != tt.want {
				t.Fatalf("Seen = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMemoryReplayCacheDropsExpired(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	for i := range 1000 {
		if _, err := c.Seen(ctx, keyN(uint64(i)), testNow, testNow.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	later := testNow.Add(2 * time.Minute)
	for i := range 64 { // touch every shard
		_, _ = c.Seen(ctx, keyN(uint64(10_000+i)), later, later.Add(time.Minute))
	}
	if n := c.Len(); n > 64 {
		t.Fatalf("%d entries left after the window passed", n)
	}
}

// When full, the cache refuses new proofs instead of forgetting live ones,
// and accepts again once entries expire.
func TestMemoryReplayCacheFailsClosed(t *testing.T) {
	ctx := context.Background()
	c, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 8, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(time.Minute)
	for i := range 8 {
		if seen, err := c.Seen(ctx, keyN(uint64(i)), testNow, exp); seen || err != nil {
			t.Fatalf("fill %d: %v %v", i, seen, err)
		}
	}
	if _, err := c.Seen(ctx, keyN(100), testNow, exp); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	for i := range 8 { // nothing was forgotten
		if seen, _ := c.Seen(ctx, keyN(uint64(i)), testNow, exp); !seen {
			t.Fatalf("entry %d forgotten", i)
		}
	}
	if seen, err := c.Seen(ctx, keyN(100), exp.Add(time.Second), exp.Add(time.Minute)); seen || err != nil {
		t.Fatalf("after expiry: %v %v", seen, err)
	}

	// Through Verify the failure is a server error, not a proof verdict.
	opts := Options{Replay: c, Now: func() time.Time { return exp.Add(time.Second) }}
	for range 10 {
		s := newSpec(testEd)
		s.claims["iat"] = exp.Add(time.Second).Unix()
		_, err = verify(t, s.build(t), testReq(), opts)
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrReplayCheck) || !errors.Is(err, ErrReplayCacheFull) || ErrorCode(err) != "" {
		t.Fatalf("Verify with a full cache: %v (code %q)", err, ErrorCode(err))
	}
}

func TestMemoryReplayCacheConfig(t *testing.T) {
	if _, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: -1}); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	c, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 3, Shards: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.shards) > 3 || c.perShard < 1 {
		t.Fatalf("%d shards of %d", len(c.shards), c.perShard)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Seen(ctx, keyN(1), testNow, testNow.Add(time.Second)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

// Many goroutines racing on the same keys: exactly one wins each key.
func TestMemoryReplayCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	c, _ := NewMemoryReplayCache(MemoryReplayOptions{})
	const keys, racers = 200, 8
	var wins [keys]atomic.Int32
	var wg sync.WaitGroup
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				seen, err := c.Seen(ctx, keyN(uint64(k)), testNow, testNow.Add(time.Minute))
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
	wg.Wait()
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Fatalf("key %d won %d times", k, n)
		}
	}
}

// The same proof sent twice at once: exactly one Verify succeeds.
func TestVerifyConcurrentReplay(t *testing.T) {
	for _, signer := range []string{"ES256", "EdDSA"} {
		t.Run(signer, func(t *testing.T) {
			s := newSpec(testEC)
			if signer == "EdDSA" {
				s = newSpec(testEd)
			}
			proof := s.build(t)
			opts := testOpts(t)
			const racers = 16
			var ok, replayed atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := Verify(context.Background(), proof, testReq(), opts)
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrReplay):
						replayed.Add(1)
					default:
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok.Load() != 1 || replayed.Load() != racers-1 {
				t.Fatalf("%d accepted, %d replays; want 1 and %d", ok.Load(), replayed.Load(), racers-1)
			}
		})
	}
}

// The cache key depends on both the key thumbprint and the jti.
func TestReplayKeyScope(t *testing.T) {
	a := NewReplayKey(testECJKT, "j1")
	if a != NewReplayKey(testECJKT, "j1") {
		t.Fatal("not deterministic")
	}
	if a == NewReplayKey(testEdJKT, "j1") || a == NewReplayKey(testECJKT, "j2") {
		t.Fatal("collision across key or jti")
	}
	if len(a.String()) != 64 {
		t.Fatalf("String() = %q", a.String())
	}
	// A second proof with the same jti from another key is not a replay.
	opts := testOpts(t)
	for _, signer := range []*spec{newSpec(testEC), newSpec(testEd)} {
		signer.claims["jti"] = "shared-jti"
		if _, err := verify(t, signer.build(t), testReq(), opts); err != nil {
			t.Fatal(err)
		}
	}
}

// An entry that expires behind a later-expiring one is still reclaimed when
// the shard is full, and a stale queue record never drops a newer entry.
func TestMemoryReplayCacheStragglers(t *testing.T) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return testNow.Add(d) }
	seen := func(c *MemoryReplayCache, k uint64, now, exp time.Duration) bool {
		t.Helper()
		s, err := c.Seen(ctx, keyN(k), at(now), at(exp))
		if err != nil {
			t.Fatalf("Seen(%d): %v", k, err)
		}
		return s
	}

	t.Run("full shard sweeps stragglers", func(t *testing.T) {
		c, _ := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 4, Shards: 1})
		seen(c, 1, 0, 60*time.Second) // long-lived head
		seen(c, 2, 0, time.Second)
		seen(c, 3, 0, time.Second)
		seen(c, 4, 0, time.Second)
		// Full, and 2..4 expired behind 1: the sweep makes room.
		if seen(c, 5, 2*time.Second, 62*time.Second) {
			t.Fatal("new key seen")
		}
		if c.Len() != 2 {
			t.Fatalf("Len = %d, want 2", c.Len())
		}
	})
	t.Run("stale record keeps newer entry", func(t *testing.T) {
		c, _ := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 8, Shards: 1})
		seen(c, 1, 0, 60*time.Second) // long-lived head
		seen(c, 2, 0, time.Second)
		// Key 2 expired and comes back while its old record is queued.
		if seen(c, 2, 2*time.Second, 62*time.Second) {
			t.Fatal("expired key seen")
		}
		// Popping key 1 and the old record of key 2 keeps the new key 2.
		if !seen(c, 2, 61*time.Second, 121*time.Second) {
			t.Fatal("stale queue record dropped a live entry")
		}
		if c.Len() != 1 {
			t.Fatalf("Len = %d, want 1", c.Len())
		}
	})
}

// Random operations agree with a plain map model: a key is seen iff it was
// stored with an expiry after now. (With a clock that steps back, entries
// dropped before the step are gone: see the MemoryReplayCache doc.)
func TestMemoryReplayCacheModel(t *testing.T) {
	ctx := context.Background()
	c, _ := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 1 << 16, Shards: 4})
	model := map[uint64]time.Time{}
	rng := rand.New(rand.NewPCG(1, 2))
	now := testNow
	for i := range 50_000 {
		now = now.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
		k := uint64(rng.IntN(2000))
		exp := now.Add(time.Duration(rng.IntN(70_000)) * time.Millisecond)
		want := model[k].After(now)
		got, err := c.Seen(ctx, keyN(k), now, exp)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("op %d key %d: Seen = %v, model %v", i, k, got, want)
		}
		if !want {
			model[k] = exp
		}
	}
}
