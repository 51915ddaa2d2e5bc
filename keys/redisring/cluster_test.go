package redisring_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

// On a Redis Cluster node every script and MGET of the store runs, which
// proves the keys share one hash tag (CROSSSLOT otherwise), and Pub/Sub
// notifications reach a watcher through the cluster client.
func TestCluster(t *testing.T) {
	t.Parallel()
	addr := redistest.StartCluster(t, 1).Addrs()[0]
	ctx := context.Background()
	w := wrapKey(t)
	open := func(opts redisring.Options) *redisring.Store {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		opts.OpTimeout = 20 * time.Second
		s, err := redisring.New(c, w, opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(redisring.Options{}), open(redisring.Options{PollInterval: time.Hour})
	if _, err := a.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Init(ctx, t0); !errors.Is(err, redisring.ErrExists) {
		t.Fatalf("second Init: %v", err)
	}
	_, v, err := b.LoadVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan uint64, 10)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Watch(wctx, v, func(v uint64) { seen <- v }) }()
	defer func() { cancel(); wg.Wait() }()
	waitSubscribed(t, newClient(t, addr))

	var rw sync.WaitGroup
	for _, s := range []*redisring.Store{a, b} {
		rw.Add(1)
		go func() {
			defer rw.Done()
			if _, err := s.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, t0) }); err != nil {
				t.Error(err)
			}
		}()
	}
	rw.Wait()
	if err := a.RotateLocal(ctx, t0, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	r, err := b.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Entries()); n != 4 {
		t.Fatalf("ring has %d keys, want 4", n)
	}
	if l, err := b.LoadLocal(ctx); err != nil || len(l) != 2 {
		t.Fatalf("LoadLocal: %d keys, %v", len(l), err)
	}
	if _, err := b.LoadPublic(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch on the cluster client saw no notification")
	}
}
