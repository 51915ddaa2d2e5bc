package issuer_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hallpass/hallpass/dpop"
)

// Benchmarks of the three hot endpoints over real HTTP on loopback, on both
// engines, beside the floor measured in the same run: one Ed25519
// signature, one proof verification, one Redis round trip. Each iteration
// includes the client's proof signature; client and server share the CPUs.
// Run with
//
//	go test -run '^$' -bench . ./issuer/
func BenchmarkEndpoints(b *testing.B) {
	for _, mk := range []func(t testing.TB) backend{
		func(testing.TB) backend { return &boltBackend{} },
		newRedisBackend,
	} {
		for _, ep := range []string{"signup", "refresh", "me"} {
			b.Run(mk(b).name()+"/"+ep, func(b *testing.B) { benchEndpoint(b, mk(b), ep) })
		}
	}
}

func benchEndpoint(b *testing.B, be backend, ep string) {
	e := newEnv(b, be)
	var n atomic.Int64
	var failures atomic.Int64
	b.SetParallelism(8) // 8 clients per CPU
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		d := e.newDevice("EdDSA")
		if ep != "signup" {
			r := e.do(d.signupReq(fmt.Sprintf("bench%d", n.Add(1))))
			if r.status != http.StatusCreated {
				failures.Add(1)
				return
			}
			d.access, d.rt = r.str(e.t, "access_token"), r.str(e.t, "refresh_token")
		}
		for pb.Next() {
			var r resp
			switch ep {
			case "signup":
				r = e.do(d.signupReq(fmt.Sprintf("bench%d", n.Add(1))))
			case "refresh":
				r = d.refreshWith(d.rt)
				if r.status == http.StatusOK {
					d.access, d.rt = r.str(e.t, "access_token"), r.str(e.t, "refresh_token")
				}
			case "me":
				r = d.me()
			}
			if r.status >= 300 {
				failures.Add(1)
			}
		}
	})
	b.StopTimer()
	if f := failures.Load(); f > 0 {
		b.Fatalf("%d failed requests", f)
	}
}

// BenchmarkFloor is what one request cannot go below.
func BenchmarkFloor(b *testing.B) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 300)
	b.Run("ed25519_sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(k, msg)
		}
	})
	b.Run("proof_verify", func(b *testing.B) {
		cache, _ := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{MaxEntriesPerKey: dpop.NoPerKeyLimit}) // one key signs every proof
		opts := dpop.Options{Replay: cache}
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i], _ = dpop.NewProof(k, "POST", "http://127.0.0.1:8080/v1/token", "", "")
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := dpop.Verify(context.Background(), proofs[i], dpop.Request{Method: "POST", URL: "http://127.0.0.1:8080/v1/token"}, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis_ping", func(b *testing.B) {
		be := newRedisBackend(b).(*redisBackend)
		be.open(b)
		ctx := context.Background()
		b.ResetTimer()
		for b.Loop() {
			if err := be.client.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
