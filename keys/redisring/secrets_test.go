package redisring_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

// TestRefreshKeyLifecycle: Init makes one refresh-token key and one pepper;
// RotateLocal keeps the replaced key until keep has passed; PruneLocal
// drops it after keep and writes nothing before (the version is
// unchanged); ResetLocal leaves one new key; RotatePepper keeps every
// older pepper.
func TestRefreshKeyLifecycle(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{})
	if _, err := s.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	const keep = 90 * 24 * time.Hour
	first := loadLocal(t, s, 1)
	loadPeppers(t, s, 1)
	if err := s.RotateLocal(ctx, t0, 0); !errors.Is(err, redisring.ErrKeep) {
		t.Fatalf("RotateLocal(keep 0) = %v, want ErrKeep", err)
	}
	if _, err := s.PruneLocal(ctx, t0, 0); !errors.Is(err, redisring.ErrKeep) {
		t.Fatalf("PruneLocal(keep 0) = %v, want ErrKeep", err)
	}
	if err := s.RotateLocal(ctx, t0.Add(time.Hour), keep); err != nil {
		t.Fatal(err)
	}
	second := loadLocal(t, s, 2)
	if second[0].Key.Equal(first[0].Key) || !second[1].Key.Equal(first[0].Key) || !second[1].Retired.Equal(t0.Add(time.Hour)) {
		t.Fatal("RotateLocal: want a new current key and the old one retired at the rotation")
	}
	for _, tc := range []struct {
		name        string
		at          time.Time
		dropped     int
		left        int
		writesStore bool
	}{
		{"before keep", t0.Add(time.Hour + keep), 0, 2, false},
		{"after keep", t0.Add(time.Hour + keep + time.Second), 1, 1, true},
		{"nothing left", t0.Add(2 * keep), 0, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v0, _ := s.Version(ctx)
			n, err := s.PruneLocal(ctx, tc.at, keep)
			if err != nil || n != tc.dropped {
				t.Fatalf("PruneLocal = %d, %v; want %d", n, err, tc.dropped)
			}
			if got := loadLocal(t, s, tc.left); !got[0].Key.Equal(second[0].Key) {
				t.Fatal("the current key changed")
			}
			if v1, _ := s.Version(ctx); (v1 != v0) != tc.writesStore {
				t.Fatalf("version %d -> %d; want a write: %v", v0, v1, tc.writesStore)
			}
		})
	}
	if err := s.ResetLocal(ctx, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	reset := loadLocal(t, s, 1)
	for _, o := range append(first, second...) {
		if reset[0].Key.Equal(o.Key) {
			t.Fatal("ResetLocal kept an older key")
		}
	}
	p1 := loadPeppers(t, s, 1)
	for i := 1; i <= 3; i++ {
		if err := s.RotatePepper(ctx, t0.Add(time.Duration(i)*1000*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	ps := loadPeppers(t, s, 4)
	if !ps[3].Pepper.Equal(p1[0].Pepper) || ps[0].Pepper.Equal(p1[0].Pepper) || !ps[0].Retired.IsZero() {
		t.Fatal("RotatePepper: want a new current pepper and every older one kept")
	}
}

func loadLocal(t *testing.T, s *redisring.Store, n int) []keys.LocalKeyEntry {
	t.Helper()
	l, err := s.LoadLocal(context.Background())
	if err != nil || len(l) != n {
		t.Fatalf("LoadLocal = %d keys, %v; want %d", len(l), err, n)
	}
	return l
}

func loadPeppers(t *testing.T, s *redisring.Store, n int) []keys.PepperEntry {
	t.Helper()
	p, err := s.LoadPeppers(context.Background())
	if err != nil || len(p) != n {
		t.Fatalf("LoadPeppers = %d, %v; want %d", len(p), err, n)
	}
	return p
}

// TestEnsureSecrets: a ring stored before refresh-token keys or peppers
// existed gets what it lacks; nodes starting at once create one list of
// each, with one key; nothing that exists changes.
func TestEnsureSecrets(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	for i, tc := range []struct {
		name                  string
		del                   []string
		wantLocal, wantPepper bool
	}{
		{"ring only", []string{"local", "pepper"}, true, true},
		{"no pepper", []string{"pepper"}, false, true},
		{"no refresh keys", []string{"local"}, true, false},
		{"complete", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("ensure%d", i)
			s := newStore(t, srv.Addr(), w, redisring.Options{Prefix: prefix})
			if _, err := s.Init(ctx, t0); err != nil {
				t.Fatal(err)
			}
			before := loadLocal(t, s, 1)
			rc := newClient(t, srv.Addr())
			for _, k := range tc.del {
				// A ring from before these lists existed had no head
				// either (a head naming them refuses their absence:
				// TestDeletedListRefused).
				rc.Del(ctx, prefix+":{keys}:"+k, prefix+":{keys}:head")
			}
			// Eight nodes start at once.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var nLocal, nPepper int
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					node := newStore(t, srv.Addr(), w, redisring.Options{Prefix: prefix})
					l, p, err := node.EnsureSecrets(ctx, t0)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if l {
						nLocal++
					}
					if p {
						nPepper++
					}
				}()
			}
			wg.Wait()
			if (nLocal == 1) != tc.wantLocal || (nPepper == 1) != tc.wantPepper || nLocal > 1 || nPepper > 1 {
				t.Fatalf("created refresh keys %d times, peppers %d times; want %v, %v", nLocal, nPepper, tc.wantLocal, tc.wantPepper)
			}
			after := loadLocal(t, s, 1)
			loadPeppers(t, s, 1)
			if tc.wantLocal == after[0].Key.Equal(before[0].Key) {
				t.Fatal("EnsureSecrets replaced refresh keys that existed, or kept deleted ones")
			}
		})
	}
}

// TestSecretsSecondNode: another node (its own client) sees a rotation
// of the refresh-token keys or of the pepper through Watch and loads the
// same keys; a refresh-key list copied over the pepper is refused, and a
// wrong wrapping key opens neither.
func TestSecretsSecondNode(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	a := newStore(t, srv.Addr(), w, redisring.Options{})
	b := newStore(t, srv.Addr(), w, redisring.Options{PollInterval: time.Hour})
	if _, err := a.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	since, _ := b.Version(ctx)
	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan uint64, 8)
	done := make(chan error, 1)
	go func() { done <- b.Watch(wctx, since, func(v uint64) { seen <- v }) }()
	for _, change := range []struct {
		name string
		do   func() error
	}{
		{"rotate refresh keys", func() error { return a.RotateLocal(ctx, t0.Add(time.Hour), time.Hour) }},
		{"end every session", func() error { return a.ResetLocal(ctx, t0.Add(2*time.Hour)) }},
		{"rotate pepper", func() error { return a.RotatePepper(ctx, t0.Add(3*time.Hour)) }},
	} {
		if err := change.do(); err != nil {
			t.Fatal(err)
		}
		want, _ := a.Version(ctx)
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case v := <-seen:
				if v == want {
					break wait
				}
			case <-deadline:
				t.Fatalf("%s: node b not told", change.name)
			}
		}
		n := lenLocal(t, a)
		la, lb := loadLocal(t, a, n), loadLocal(t, b, n)
		if !la[0].Key.Equal(lb[0].Key) {
			t.Fatalf("%s: the nodes seal with different keys", change.name)
		}
		pa, _ := a.LoadPeppers(ctx)
		pb, _ := b.LoadPeppers(ctx)
		if len(pa) != len(pb) || !pa[0].Pepper.Equal(pb[0].Pepper) {
			t.Fatalf("%s: the nodes hold different peppers", change.name)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v", err)
	}

	rc := newClient(t, srv.Addr())
	local, err := rc.Get(ctx, "hallpass:{keys}:local").Result()
	if err != nil {
		t.Fatal(err)
	}
	rc.Set(ctx, "hallpass:{keys}:pepper", local, 0)
	if _, err := a.LoadPeppers(ctx); !errors.Is(err, redisring.ErrCorrupt) {
		t.Fatalf("refresh keys stored as the pepper: %v, want ErrCorrupt", err)
	}
	wrong := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{})
	if _, err := wrong.LoadPeppers(ctx); !errors.Is(err, keys.ErrUnwrap) {
		t.Fatalf("wrong wrapping key: %v, want keys.ErrUnwrap", err)
	}
	if err := wrong.RotatePepper(ctx, t0); !errors.Is(err, keys.ErrUnwrap) {
		t.Fatalf("RotatePepper with a wrong wrapping key: %v, want keys.ErrUnwrap (and nothing overwritten)", err)
	}
}

func lenLocal(t *testing.T, s *redisring.Store) int {
	t.Helper()
	l, err := s.LoadLocal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}
