package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/dpop"
)

// Floor is what one request cannot go below, measured in the same run on
// the same machine, one operation at a time.
type Floor struct {
	SignNS      float64 `json:"ed25519_sign_ns_per_op"`
	VerifyNS    float64 `json:"proof_verify_ns_per_op"`
	RedisPingNS float64 `json:"redis_ping_ns_per_op,omitempty"` // 0 when Redis is not in the run
}

// floorURL is only a string inside the proofs measured; nothing is sent.
const floorURL = "http://127.0.0.1:8080/v1/token"

// maxFloorOps bounds each floor measurement in count (budget bounds it in time).
const maxFloorOps = 1_000_000

// measureFloor times one Ed25519 signature (a 300-byte message, about a
// proof's signing input), one dpop.Verify of a fresh proof (in-memory
// replay cache) and, when redisAddr is set, one PING round trip; each for
// about budget.
func measureFloor(ctx context.Context, budget time.Duration, redisAddr string) (Floor, error) {
	var f Floor
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return f, err
	}

	msg := make([]byte, 300)
	f.SignNS = timeLoop(budget, func(n int) error {
		for range n {
			ed25519.Sign(k, msg)
		}
		return nil
	})

	cache, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	if err != nil {
		return f, err
	}
	opts := dpop.Options{Replay: cache}
	req := dpop.Request{Method: "POST", URL: floorURL}
	// Proofs are made outside the timed part, a batch at a time, so each
	// one verified is fresh (never a replay).
	var total time.Duration
	var ops int
	for total < budget && ops < maxFloorOps && ctx.Err() == nil {
		batch := make([]string, 256)
		for i := range batch {
			if batch[i], err = dpop.NewProof(k, "POST", floorURL, "", ""); err != nil {
				return f, err
			}
		}
		t0 := time.Now()
		for _, p := range batch {
			if _, err := dpop.Verify(ctx, p, req, opts); err != nil {
				return f, fmt.Errorf("floor: verify: %w", err)
			}
		}
		total += time.Since(t0)
		ops += len(batch)
	}
	f.VerifyNS = float64(total.Nanoseconds()) / float64(ops)

	if redisAddr != "" {
		c := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true, PoolSize: 1})
		defer c.Close()
		if err := c.Ping(ctx).Err(); err != nil { // warm the connection
			return f, fmt.Errorf("floor: redis ping: %w", err)
		}
		var pingErr error
		f.RedisPingNS = timeLoop(budget, func(n int) error {
			for range n {
				if err := c.Ping(ctx).Err(); err != nil {
					pingErr = err
					return err
				}
			}
			return nil
		})
		if pingErr != nil {
			return f, fmt.Errorf("floor: redis ping: %w", pingErr)
		}
	}
	return f, nil
}

// timeLoop runs f on growing batches until budget has passed (or
// maxFloorOps operations) and returns nanoseconds per operation.
func timeLoop(budget time.Duration, f func(n int) error) float64 {
	var total time.Duration
	ops, n := 0, 16
	for total < budget && ops < maxFloorOps {
		n = min(n, maxFloorOps-ops)
		t0 := time.Now()
		if f(n) != nil {
			return 0
		}
		total += time.Since(t0)
		ops += n
		n *= 2
	}
	return float64(total.Nanoseconds()) / float64(ops)
}
