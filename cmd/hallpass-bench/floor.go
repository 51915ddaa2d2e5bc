package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/token"
)

// Floor is what one scenario's requests cannot go below: the cryptography
// the server must do per request, run flat out by as many goroutines as
// there are clients, on the same CPUs as the server, in the same run.
//
//   - signup and refresh: one DPoP proof verify (dpop.Verify, in-memory
//     replay cache), one Ed25519 signature of an access token
//     (token.SignV4Public) and one refresh-token seal (refresh.Codec.Seal,
//     PASETO v4.local);
//   - me: one access-token verify (token.VerifyV4Public, Ed25519) and one
//     proof verify (with ath and the token's cnf.jkt).
//
// The client's side (making the proof, the HTTP client) is not in it: run
// the load on other CPUs (-server-cpus, -load-cpus) to keep it out of the
// server's share too.
type Floor struct {
	Ops       int64   `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_s"`
}

// floorOps says what each scenario's floor does, for the report.
var floorOps = map[string]string{
	"signup":  "proof verify + Ed25519 sign + v4.local seal",
	"refresh": "proof verify + Ed25519 sign + v4.local seal",
	"me":      "Ed25519 token verify + proof verify",
}

// floorHost is only a string inside the proofs measured; nothing is sent.
const floorHost = "http://127.0.0.1:8080"

// maxFloorPool bounds the proofs made for one floor window.
const maxFloorPool = 500_000

// floorEnv holds the keys and inputs of the floor operations, made once.
type floorEnv struct {
	device  crypto.Signer
	jkt     string
	signer  *keys.SecretKey
	pub     keys.PublicKey
	payload []byte // a real access token's payload and footer
	footer  []byte
	access  string // that access token
	codec   *refresh.Codec
	rtc     refresh.Claims

	mu   sync.Mutex
	rate map[string]float64 // last ops/s per scenario, to size the next pool
}

func newFloorEnv(alg proofAlg) (*floorEnv, error) {
	e := &floorEnv{rate: map[string]float64{}}
	var err error
	if e.device, err = alg.newKey(); err != nil {
		return nil, err
	}
	if e.jkt, err = dpop.Thumbprint(e.device.Public()); err != nil {
		return nil, err
	}
	if e.signer, err = keys.GenerateSecretKey(nil); err != nil {
		return nil, err
	}
	e.pub = e.signer.PublicKey()
	m, err := token.NewMinter(token.Config{Issuer: floorHost, Audience: floorHost})
	if err != nil {
		return nil, err
	}
	if e.access, _, err = m.Mint(e.signer, token.Subject{Account: "acc_floor", Device: "dev_floor", JKT: e.jkt}); err != nil {
		return nil, err
	}
	if e.payload, e.footer, err = token.VerifyV4Public(e.pub, e.access, nil); err != nil {
		return nil, err
	}
	lk, err := keys.GenerateLocalKey(nil)
	if err != nil {
		return nil, err
	}
	if e.codec, err = refresh.NewCodec(time.Now, lk); err != nil {
		return nil, err
	}
	now := time.Now()
	e.rtc = refresh.Claims{DeviceID: "dev_floor", Counter: 1, IssuedAt: now, ExpiresAt: now.Add(90 * 24 * time.Hour)}
	return e, nil
}

// floorCase is one scenario's floor: the request a proof is made for, and
// the operation on one proof.
type floorCase struct {
	method, url, access string
	op                  func(ctx context.Context, proof string, opts dpop.Options) error
}

func (e *floorEnv) floorCase(scenario string) (floorCase, error) {
	switch scenario {
	case "signup", "refresh":
		c := floorCase{method: "POST", url: floorHost + "/v1/token"}
		req := dpop.Request{Method: c.method, URL: c.url}
		c.op = func(ctx context.Context, proof string, opts dpop.Options) error {
			if _, err := dpop.Verify(ctx, proof, req, opts); err != nil {
				return fmt.Errorf("proof verify: %w", err)
			}
			if _, err := token.SignV4Public(e.signer, e.payload, e.footer, nil); err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			if _, err := e.codec.Seal(e.rtc); err != nil {
				return fmt.Errorf("seal: %w", err)
			}
			return nil
		}
		return c, nil
	case "me":
		c := floorCase{method: "GET", url: floorHost + "/v1/me", access: e.access}
		req := dpop.Request{Method: c.method, URL: c.url, AccessToken: e.access, JKT: e.jkt}
		c.op = func(ctx context.Context, proof string, opts dpop.Options) error {
			if _, _, err := token.VerifyV4Public(e.pub, e.access, nil); err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			if _, err := dpop.Verify(ctx, proof, req, opts); err != nil {
				return fmt.Errorf("proof verify: %w", err)
			}
			return nil
		}
		return c, nil
	}
	return floorCase{}, fmt.Errorf("no floor for scenario %q", scenario)
}

// measure runs scenario's floor with workers goroutines for about d and
// returns its throughput. Each operation verifies a fresh proof (never a
// replay); the proofs are made beforehand, on every CPU, outside the
// timed window, which ends early if they run out.
func (e *floorEnv) measure(ctx context.Context, scenario string, workers int, d time.Duration) (Floor, error) {
	c, err := e.floorCase(scenario)
	if err != nil {
		return Floor{}, err
	}
	pool, err := e.proofs(c, e.poolSize(ctx, scenario, c, d))
	if err != nil {
		return Floor{}, err
	}
	cache, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{MaxEntriesPerKey: dpop.NoPerKeyLimit})
	if err != nil {
		return Floor{}, err
	}
	opts := dpop.Options{Replay: cache}

	var (
		next, done atomic.Int64
		stop       atomic.Bool
		firstErr   error
		errOnce    sync.Once
		wg         sync.WaitGroup
	)
	start := time.Now()
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	for range workers {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(pool)) {
					stop.Store(true)
					return
				}
				if err := c.op(ctx, pool[i], opts); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	timer.Stop()
	if firstErr != nil {
		return Floor{}, fmt.Errorf("floor %s: %w", scenario, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return Floor{}, err
	}
	f := Floor{Ops: done.Load(), Seconds: elapsed.Seconds()}
	if f.Ops == 0 || f.Seconds <= 0 {
		return Floor{}, errors.New("floor: no operation completed")
	}
	f.OpsPerSec = float64(f.Ops) / f.Seconds
	e.mu.Lock()
	e.rate[scenario] = f.OpsPerSec
	e.mu.Unlock()
	return f, nil
}

// poolSize is how many proofs a window of d needs at 1.5 times the last
// rate seen; the first time, the rate is estimated from a few operations
// timed one at a time, times GOMAXPROCS.
func (e *floorEnv) poolSize(ctx context.Context, scenario string, c floorCase, d time.Duration) int {
	e.mu.Lock()
	rate := e.rate[scenario]
	e.mu.Unlock()
	if rate == 0 {
		const n = 32
		pool, err := e.proofs(c, n)
		cache, err2 := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{MaxEntriesPerKey: dpop.NoPerKeyLimit})
		if err == nil && err2 == nil {
			opts := dpop.Options{Replay: cache}
			t0 := time.Now()
			for _, p := range pool {
				_ = c.op(ctx, p, opts)
			}
			rate = float64(runtime.GOMAXPROCS(0)) * n / max(time.Since(t0).Seconds(), 1e-9)
		}
	}
	return min(maxFloorPool, int(1.5*rate*d.Seconds())+256)
}

// proofs makes n fresh proofs for c on every CPU.
func (e *floorEnv) proofs(c floorCase, n int) ([]string, error) {
	out := make([]string, n)
	var (
		next    atomic.Int64
		failed  atomic.Pointer[error]
		workers sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		workers.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				p, err := dpop.NewProof(e.device, c.method, c.url, c.access, "")
				if err != nil {
					failed.Store(&err)
					return
				}
				out[i] = p
			}
		})
	}
	workers.Wait()
	if err := failed.Load(); err != nil {
		return nil, fmt.Errorf("floor: make proof: %w", *err)
	}
	return out, nil
}
