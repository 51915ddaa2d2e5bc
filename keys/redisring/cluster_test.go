package redisring_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

// startClusterNode runs a redis-server in cluster mode that owns all 16384
// slots: a Redis Cluster of one node. It enforces what a real cluster
// does for multi-key commands and scripts (CROSSSLOT when the keys do not
// share a slot), so the conformance suite on it proves the hash tags.
// internal/redistest starts plain servers only; this is the cluster variant.
func startClusterNode(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", dir+"/redis.log")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := t.Context()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("cluster node did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not become ok: %v %q", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// On a Redis Cluster node every script and MGET of the store runs, which
// proves the keys share one hash tag (CROSSSLOT otherwise), and Pub/Sub
// notifications reach a watcher through the cluster client.
func TestCluster(t *testing.T) {
	t.Parallel()
	addr := startClusterNode(t)
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
	if err := a.RotateLocal(ctx, t0, 0); err != nil {
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
