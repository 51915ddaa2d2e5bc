package dpop

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	rand2 "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyN is proof n of a key of its own.
func keyN(n uint64) ReplayKey { return keyOf(n, n) }

// keyOf is proof n of proof key owner.
func keyOf(owner, n uint64) ReplayKey {
	var k ReplayKey
	binary.BigEndian.PutUint64(k.digest[:], n)
	binary.BigEndian.PutUint64(k.digest[8:], owner)
	binary.BigEndian.PutUint64(k.owner[:], owner)
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
	// No per-key bound: the Verify part below fills the cache with proofs
	// of one key (TestMemoryReplayCacheKeyQuota covers the bound).
	c, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 8, Shards: 1, MaxEntriesPerKey: NoPerKeyLimit})
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
	for _, bad := range []MemoryReplayOptions{{MaxEntries: -1}, {Shards: -1}, {MaxEntriesPerKey: -2}} {
		if _, err := NewMemoryReplayCache(bad); !errors.Is(err, ErrConfig) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	for _, tc := range []struct {
		opts        MemoryReplayOptions
		shards, per int
	}{
		{opts: MemoryReplayOptions{}, shards: 64, per: 156},             // 1% of 1,000,000 over 64 shards
		{opts: MemoryReplayOptions{MaxEntries: 50}, shards: 32, per: 1}, // at least one per shard
		{opts: MemoryReplayOptions{MaxEntries: 1 << 16, Shards: 4, MaxEntriesPerKey: 1000}, shards: 4, per: 250},
		{opts: MemoryReplayOptions{MaxEntriesPerKey: NoPerKeyLimit}, shards: 64, per: 0},
	} {
		c, err := NewMemoryReplayCache(tc.opts)
		if err != nil || len(c.shards) != tc.shards || c.perKey != tc.per {
			t.Fatalf("%+v: %d shards, %d per key per shard, %v; want %d, %d", tc.opts, len(c.shards), c.perKey, err, tc.shards, tc.per)
		}
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
	rng := rand2.New(rand2.NewPCG(1, 2))
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

// One proof key holds at most its quota in a shard; past it only that
// key's new proofs are refused, its held proofs are still replays, the
// other keys go on, and the key is served again once its entries expire.
func TestMemoryReplayCacheKeyQuota(t *testing.T) {
	ctx := context.Background()
	c, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 100, Shards: 1, MaxEntriesPerKey: 5})
	if err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(time.Minute)
	for i := range 5 {
		if seen, err := c.Seen(ctx, keyOf(1, uint64(i)), testNow, exp); seen || err != nil {
			t.Fatalf("proof %d: %v, %v", i, seen, err)
		}
	}
	if _, err := c.Seen(ctx, keyOf(1, 5), testNow, exp); !errors.Is(err, ErrReplayKeyQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if seen, err := c.Seen(ctx, keyOf(1, 0), testNow, exp); !seen || err != nil {
		t.Fatalf("replay of a held proof over quota: %v, %v", seen, err)
	}
	for owner := uint64(2); owner < 20; owner++ {
		if seen, err := c.Seen(ctx, keyOf(owner, 100), testNow, exp); seen || err != nil {
			t.Fatalf("other key %d: %v, %v", owner, seen, err)
		}
	}
	later := exp.Add(time.Second)
	if seen, err := c.Seen(ctx, keyOf(1, 5), later, later.Add(time.Minute)); seen || err != nil {
		t.Fatalf("after expiry: %v, %v", seen, err)
	}
	// Counts leave with their entries: nothing is kept for idle keys.
	if n := len(c.shards[0].keys); n != 1 {
		t.Fatalf("%d keys counted after expiry, want 1", n)
	}
}

// Issue 11, finding 4: one device filled the in-memory replay cache
// (global bound, no per-key quota, fail closed by design), after which every
// other device's proofs were refused with 503 until entries aged out; shown
// with the real dpop.Verify and a cache scaled down 50x. Here one key
// floods a cache scaled down further: it gets its quota (1% of the cache)
// and then ErrReplayKeyQuota, and the other keys' proofs still pass.
func TestReplayCacheOneKeyCannotFillIt(t *testing.T) {
	const maxEntries = 1000 // default 1,000,000 scaled down 1000x
	c, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: maxEntries, Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Replay: c}
	req := Request{Method: "POST", URL: "https://server.example.com/token"}
	newKey := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	attacker := newKey()
	accepted := 0
	for range maxEntries + 100 { // more than the whole cache holds
		proof, err := NewProof(attacker, req.Method, req.URL, "", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = Verify(context.Background(), proof, req, opts)
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, ErrReplayCheck) || !errors.Is(err, ErrReplayKeyQuota) || ErrorCode(err) != "":
			t.Fatalf("flood: %v", err)
		}
	}
	if accepted > maxEntries/100 {
		t.Fatalf("one key holds %d entries, over 1%% of %d", accepted, maxEntries)
	}
	for i := range 50 {
		k := newKey()
		for j := range 2 {
			proof, err := NewProof(k, req.Method, req.URL, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(context.Background(), proof, req, opts); err != nil {
				t.Fatalf("device %d proof %d refused during the flood: %v", i, j, err)
			}
		}
	}
}

// Random operations by a few keys agree with a model that counts each
// key's live entries per shard. Expiries are issued in order (as Verify
// issues them: iat plus a fixed window), so the cache drops every expired
// entry on time and the model is exact.
func TestMemoryReplayCacheKeyQuotaModel(t *testing.T) {
	ctx := context.Background()
	const perKey = 3
	c, _ := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 64, Shards: 4, MaxEntriesPerKey: 4 * perKey})
	type rec struct {
		owner uint64
		exp   time.Time
	}
	model := map[ReplayKey]rec{}
	live := func(s *memShard, owner uint64, now time.Time) (all, mine int) {
		for k, r := range model {
			if c.shard(k) == s && r.exp.After(now) {
				all++
				if r.owner == owner {
					mine++
				}
			}
		}
		return all, mine
	}
	rng := rand2.New(rand2.NewPCG(3, 4))
	now := testNow
	for i := range 20_000 {
		now = now.Add(time.Duration(rng.IntN(200)) * time.Millisecond)
		owner := uint64(rng.IntN(6))
		k := keyOf(owner, uint64(rng.IntN(40)))
		exp := now.Add(10 * time.Second)
		r, held := model[k]
		held = held && r.exp.After(now)
		all, mine := live(c.shard(k), owner, now)
		got, err := c.Seen(ctx, k, now, exp)
		switch {
		case held:
			if !got || err != nil {
				t.Fatalf("op %d: held proof: %v, %v", i, got, err)
			}
		case mine >= perKey:
			if !errors.Is(err, ErrReplayKeyQuota) {
				t.Fatalf("op %d: key %d holds %d in its shard: %v, %v", i, owner, mine, got, err)
			}
		case all >= c.perShard:
			if !errors.Is(err, ErrReplayCacheFull) {
				t.Fatalf("op %d: shard holds %d: %v, %v", i, all, got, err)
			}
		default:
			if got || err != nil {
				t.Fatalf("op %d: new proof: %v, %v", i, got, err)
			}
			model[k] = rec{owner: owner, exp: exp}
		}
	}
}
