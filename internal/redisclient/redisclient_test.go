package redisclient

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestCheck(t *testing.T) {
	good := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer good.Close()
	noTimeout := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noTimeout.Close()
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
	defer cluster.Close()
	replicaReads := func(o redis.ClusterOptions) redis.UniversalClient {
		o.Addrs, o.ContextTimeoutEnabled = []string{"127.0.0.1:1"}, true
		c := redis.NewClusterClient(&o)
		t.Cleanup(func() { c.Close() })
		return c
	}
	tests := []struct {
		name    string
		c       redis.UniversalClient
		prefix  string
		want    string
		wantErr bool
	}{
		{name: "default prefix", c: good, want: "def"},
		{name: "own prefix", c: good, prefix: "app", want: "app"},
		{name: "cluster client", c: cluster, want: "def"},
		{name: "nil client", c: nil, wantErr: true},
		{name: "no context timeout", c: noTimeout, wantErr: true},
		{name: "brace in prefix", c: good, prefix: "a{b", wantErr: true},
		// A replica behind its master answers reads with what the master
		// has moved past (a revocation snapshot missing entries its
		// cursor covers).
		{name: "cluster reading replicas", c: replicaReads(redis.ClusterOptions{ReadOnly: true}), wantErr: true},
		{name: "cluster routing by latency", c: replicaReads(redis.ClusterOptions{RouteByLatency: true}), wantErr: true},
		{name: "cluster routing randomly", c: replicaReads(redis.ClusterOptions{RouteRandomly: true}), wantErr: true},
		{name: "unknown client type", c: struct{ redis.UniversalClient }{good}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check(tc.c, tc.prefix, "def")
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Check = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
