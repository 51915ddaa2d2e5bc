package redisstore_test

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/storetest"
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

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	addr := startClusterNode(t)
	storetest.Run(t, &factory{
		newClient: func(t *testing.T) redis.UniversalClient {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = c.Close() })
			return c
		},
		prefixes: map[account.Store]string{},
	})
}

// The cluster node really refuses keys of two slots in one script, so the
// conformance run above is meaningful.
func TestClusterRefusesCrossSlot(t *testing.T) {
	t.Parallel()
	addr := startClusterNode(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	err := c.Eval(t.Context(), "return 1", []string{"{a}x", "{b}y"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("cross-slot script: %v, want CROSSSLOT", err)
	}
}
