package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/live"
	"github.com/hallpass/hallpass/keys/redisring"
)

// storedEntry is what a store writes of one signing key.
type storedEntry struct {
	Kid    keys.KeyID  `json:"kid"`
	Status keys.Status `json:"status"`
	Secret string      `json:"secret"`
}

// ringBackend makes two nodes' stores on one storage with a ring in it,
// and reads back what the storage holds (not through a store).
type ringBackend struct {
	name   string
	open   func(t *testing.T) (a, b live.Watcher)
	stored func(t *testing.T) []storedEntry
}

func ringBackends(t *testing.T) []ringBackend {
	t.Helper()
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	var rc *redis.Client
	return []ringBackend{
		{
			name: "files",
			open: func(t *testing.T) (live.Watcher, live.Watcher) {
				dir = t.TempDir()
				prot, _ := filestore.WrapKey(w)
				var st [2]*filestore.Store
				for i := range st {
					st[i], _ = filestore.New(dir, prot, nil)
					st[i].PollInterval = 10 * time.Millisecond
				}
				if _, err := st[0].Init(context.Background(), time.Now()); err != nil {
					t.Fatal(err)
				}
				return st[0], st[1]
			},
			stored: func(t *testing.T) []storedEntry {
				b, err := os.ReadFile(filepath.Join(dir, "ring.json"))
				if err != nil {
					t.Fatal(err)
				}
				var f struct{ Keys []storedEntry }
				if err := json.Unmarshal(b, &f); err != nil {
					t.Fatal(err)
				}
				return f.Keys
			},
		},
		{
			name: "redis",
			open: func(t *testing.T) (live.Watcher, live.Watcher) {
				srv := redistest.Start(t)
				rc = redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
				t.Cleanup(func() { rc.Close() })
				var st [2]*redisring.Store
				for i := range st {
					c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
					t.Cleanup(func() { c.Close() })
					var err error
					if st[i], err = redisring.New(c, w, redisring.Options{OpTimeout: 20 * time.Second, PollInterval: 50 * time.Millisecond}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := st[0].Init(context.Background(), time.Now()); err != nil {
					t.Fatal(err)
				}
				return st[0], st[1]
			},
			stored: func(t *testing.T) []storedEntry {
				v, err := rc.Get(context.Background(), "hallpass:{keys}:ring").Result()
				if err != nil {
					t.Fatal(err)
				}
				var env struct {
					Doc struct{ Keys []storedEntry } `json:"doc"`
				}
				if err := json.Unmarshal([]byte(v), &env); err != nil {
					t.Fatal(err)
				}
				return env.Doc.Keys
			},
		},
	}
}

// TestRotationPrunes is issue 11, finding 5: after five rotations through
// the key manager the admin API calls (POST /v1/admin/keys/rotate ends in
// live.Ring.Rotate), five retired keys sat in the ring with their wrapped
// secrets, published and trusted by every verifier forever. Now, on files
// and on Redis, no retired key holds a secret in the store, and once
// RetiredKeep (token.MaxTTL + leeway) has passed, the timer of a followed
// ring drops them: they leave the published key set on both nodes.
func TestRotationPrunes(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, be := range ringBackends(t) {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Now().UTC()}
			sa, sb := be.open(t)
			opts := live.Options{Now: clk.Now, MaintainEvery: 10 * time.Millisecond}
			a, err := live.Follow(ctx, sa, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := live.Follow(ctx, sb, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for range 5 {
				clk.Add(keys.MinNextAge)
				if err := a.Rotate(ctx); err != nil {
					t.Fatal(err)
				}
			}
			retired := 0
			for _, e := range be.stored(t) {
				if e.Status == keys.StatusRetired {
					retired++
					if e.Secret != "" {
						t.Errorf("retired key %s is stored with its secret", e.Kid)
					}
				}
			}
			if retired != 5 {
				t.Fatalf("%d retired keys stored, want 5", retired)
			}
			published := func(l *live.Ring) (n int) {
				for _, k := range l.KeySet("https://issuer.example").Keys {
					if k.Status == keys.StatusRetired {
						n++
					}
				}
				return n
			}
			eventually(t, "node b serves the five retired keys", func() bool { return published(b) == 5 })

			clk.Add(keys.DefaultRetiredKeep) // the newest retired just keep ago, the others earlier: four are due
			eventually(t, "the timer drops the four due", func() bool { return published(a) == 1 && published(b) == 1 })
			clk.Add(time.Minute)
			eventually(t, "and then the last", func() bool { return published(a) == 0 && published(b) == 0 })
			for _, e := range be.stored(t) {
				if e.Status == keys.StatusRetired {
					t.Fatalf("retired key %s still stored after its keep", e.Kid)
				}
			}
		})
	}
}

// TestRotateIfDue: with RotateEvery, two nodes due at once rotate once
// (the check runs again inside the store's update); nothing happens before
// the period.
func TestRotateIfDue(t *testing.T) {
	for _, be := range ringBackends(t) {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			sa, sb := be.open(t)
			clk := &clock{t: time.Now().UTC()} // after Init: the current key signs from before
			opts := live.Options{Now: clk.Now, RotateEvery: 24 * time.Hour}
			a, err := live.Open(ctx, sa, opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := live.Open(ctx, sb, opts)
			if err != nil {
				t.Fatal(err)
			}
			first := a.Current().ID()
			clk.Add(23 * time.Hour)
			if done, err := a.RotateIfDue(ctx); done || err != nil {
				t.Fatalf("RotateIfDue before the period = %v, %v", done, err)
			}
			clk.Add(time.Hour)
			var wg sync.WaitGroup
			var mu sync.Mutex
			rotations := 0
			for _, l := range []*live.Ring{a, b} {
				wg.Go(func() {
					done, err := l.RotateIfDue(ctx)
					if err != nil {
						t.Error(err)
					}
					mu.Lock()
					defer mu.Unlock()
					if done {
						rotations++
					}
				})
			}
			wg.Wait()
			r, err := sa.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			retired := 0
			for _, e := range r.Entries() {
				if e.Status == keys.StatusRetired {
					retired++
				}
			}
			if rotations != 1 || retired != 1 || r.Current().ID() == first {
				t.Fatalf("%d rotations, %d retired keys; want one of each", rotations, retired)
			}
		})
	}
}

// TestRotateIfDueWaitsForNext: a scheduled rotation due while the next key
// is younger than keys.MinNextAge (it replaced a revoked next key) is not
// an error: not due yet, and done once the next key is old enough.
func TestRotateIfDueWaitsForNext(t *testing.T) {
	ctx := context.Background()
	st := newMemStore(t)
	clk := &clock{t: time.Now().UTC()}
	l, err := live.Open(ctx, st, live.Options{Now: clk.Now, RotateEvery: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first := l.Current().ID()
	clk.Add(24 * time.Hour)
	var next keys.KeyID
	for _, k := range l.KeySet("https://issuer.example").Keys {
		if k.Status == keys.StatusNext {
			next = k.Kid
		}
	}
	if err := l.Revoke(ctx, next); err != nil {
		t.Fatal(err)
	}
	if done, err := l.RotateIfDue(ctx); done || err != nil {
		t.Fatalf("RotateIfDue with a next key just made = %v, %v; want not due", done, err)
	}
	if l.Current().ID() != first {
		t.Fatal("rotated to a next key just made")
	}
	clk.Add(keys.MinNextAge)
	if done, err := l.RotateIfDue(ctx); !done || err != nil {
		t.Fatalf("RotateIfDue once the next key is old enough = %v, %v", done, err)
	}
	if l.Current().ID() == first {
		t.Fatal("no rotation")
	}
}

// TestOptionsRefused: options that would break a guarantee are refused.
// A RetiredKeep below keys.DefaultRetiredKeep was taken as given, so Rotate,
// Revoke and the maintenance timer dropped a retired key from the published
// key set while tokens it signed were still valid (a token minted just
// before a rotation lives token.MaxTTL after it): verifiers refused them
// as signed by an unknown key.
func TestOptionsRefused(t *testing.T) {
	st := newMemStore(t)
	for name, o := range map[string]live.Options{
		"negative keep":                       {RetiredKeep: -1},
		"keep shorter than the longest token": {RetiredKeep: keys.DefaultRetiredKeep - time.Second},
		"keep of one minute":                  {RetiredKeep: time.Minute},
		"negative maintain":                   {MaintainEvery: -1},
		"rotate every minute":                 {RotateEvery: time.Minute},
		"negative rotate period":              {RotateEvery: -time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := live.Open(context.Background(), st, o); err == nil {
				t.Fatal("Open accepted it")
			}
			if _, err := live.Follow(context.Background(), st, o); err == nil {
				t.Fatal("Follow accepted it")
			}
		})
	}
}

// TestFollowRefusesRollback: a node following a Redis ring that someone
// rolls back (the old ring document, where a since-revoked key is current,
// put back, the counter bumped so that every node reloads) keeps serving
// the ring it had: the revoked key does not sign again and stays published
// as revoked. The refusal is reported to OnRollback and logged.
func TestFollowRefusesRollback(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // last: after Redis stops
	ctx := context.Background()
	srv := redistest.Start(t)
	w, _ := keys.GenerateWrappingKey(nil)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rc.Close()
	var mu sync.Mutex
	alerts := 0
	logs := &logbuf.Buffer{}
	st, err := redisring.New(rc, w, redisring.Options{
		PollInterval: 20 * time.Millisecond, StateFile: filepath.Join(t.TempDir(), "state"),
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		OnRollback: func(string) { mu.Lock(); alerts++; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	old := rc.Get(ctx, "hallpass:{keys}:ring").Val()
	l, err := live.Follow(ctx, st, live.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	revoked := l.Current().ID()
	if err := l.Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	rc.Set(ctx, "hallpass:{keys}:ring", old, 0)
	rc.Incr(ctx, "hallpass:{keys}:version")
	eventually(t, "the rollback is refused", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return alerts > 0
	})
	if l.Current().ID() == revoked {
		t.Fatal("the revoked key signs again")
	}
	if ks := l.KeySet("https://issuer.example"); len(ks.Revoked) != 1 || ks.Revoked[0] != revoked {
		t.Fatalf("key set revoked = %v", ks.Revoked)
	}
	if !strings.Contains(logs.String(), "key ring rollback refused") {
		t.Fatalf("no log line: %s", logs.String())
	}
	if _, err := st.Load(ctx); !errors.Is(err, redisring.ErrRollback) {
		t.Fatalf("Load = %v, want ErrRollback", err)
	}
}
