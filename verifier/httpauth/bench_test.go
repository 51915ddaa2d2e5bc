package httpauth_test

import (
	"crypto"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/benchratio"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// BenchmarkMiddleware measures Middleware over loopback with a real client
// that makes a fresh Ed25519 proof for every request, beside the floor
// measured in the same run: the three signatures a request cannot avoid
// (one Ed25519 verify of the token, one sign of the proof by the client,
// one verify of the proof). The client and the server share the machine, as
// the floor's sign and verifies do.
//
//   - serial: one request at a time, interleaved with the floor
//     (internal/benchratio): median latency ratio, p50 and p99;
//   - throughput: rounds of 100 ms with 4 client goroutines per CPU, then
//     the floor with as many goroutines on the same CPUs; reports req/s and the median of
//     (req/s) / (floor ops/s), the target being >= 0.85. For context,
//     unauth-req/s is the same client (proof signed and sent) against a
//     handler without the middleware: the cost of net/http over loopback
//     plus the client's signature.
func BenchmarkMiddleware(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("serial", func(b *testing.B) {
		var lat []float64
		op := func() {
			t0 := time.Now()
			e.request(b)
			lat = append(lat, float64(time.Since(t0)))
		}
		benchratio.Run(b, "middleware", op, e.floor)
		slices.Sort(lat)
		b.ReportMetric(lat[len(lat)/2]/1e3, "p50-µs")
		b.ReportMetric(lat[len(lat)*99/100]/1e3, "p99-µs")
	})
	// parallel: requests only, for profiles.
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e.request(b)
			}
		})
	})
	b.Run("throughput", func(b *testing.B) {
		procs := runtime.GOMAXPROCS(0)
		var ratios, rates, plain, floors []float64
		for b.Loop() {
			rate := throughput(4*procs, 100*time.Millisecond, func() { e.request(b) })
			floor := throughput(4*procs, 100*time.Millisecond, e.floor)
			ratios = append(ratios, rate/floor)
			rates = append(rates, rate)
			floors = append(floors, floor)
			plain = append(plain, throughput(4*procs, 100*time.Millisecond, func() { e.plainRequest(b) }))
		}
		b.ReportMetric(benchratio.Median(rates), "req/s")
		b.ReportMetric(benchratio.Median(floors), "floor-ops/s")
		b.ReportMetric(benchratio.Median(ratios), "of-floor")
		b.ReportMetric(benchratio.Median(plain), "unauth-req/s")
	})
}

// BenchmarkFloor is the floor alone, per CPU.
func BenchmarkFloor(b *testing.B) {
	e := newBenchEnv(b)
	for b.Loop() {
		e.floor()
	}
}

type benchEnv struct {
	url, tok string
	plainURL string
	device   ed25519.PrivateKey
	client   *http.Client

	// floor inputs
	issuerPub, devicePub ed25519.PublicKey
	tokMsg, tokSig       []byte
	proofInput, proofSig []byte
}

func newBenchEnv(b *testing.B, opts ...verifier.Option) *benchEnv {
	b.Helper()
	e := &benchEnv{}
	sk, err := keys.GenerateSecretKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	e.devicePub, e.device, _ = ed25519.GenerateKey(nil)
	jkt, _ := dpop.Thumbprint(e.devicePub)
	m, err := token.NewMinter(token.Config{Issuer: testIss, Audience: testAud, TTL: token.MaxTTL})
	if err != nil {
		b.Fatal(err)
	}
	if e.tok, _, err = m.Mint(sk, token.Subject{Account: "acc_1", Device: "dev_1", JKT: jkt}); err != nil {
		b.Fatal(err)
	}
	ks, _ := verifier.NewStaticKeySet(sk.PublicKey())
	v, err := verifier.New(ks, testIss, testAud, opts...)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	b.Cleanup(srv.Close)
	// One device key signs every proof: no per-key quota in the cache.
	replay, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{MaxEntriesPerKey: dpop.NoPerKeyLimit})
	if err != nil {
		b.Fatal(err)
	}
	auth, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: srv.URL, Replay: replay})
	if err != nil {
		b.Fatal(err)
	}
	noContent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux := http.NewServeMux()
	mux.Handle("/api/", auth.Middleware(noContent))
	mux.Handle("/plain/", noContent)
	srv.Config.Handler = mux
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	e.client = &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	e.url = srv.URL + "/api/things"
	e.plainURL = srv.URL + "/plain/things"

	// Floor inputs: the token's signed message and signature, and a
	// proof's signing input.
	payload, footer, err := token.VerifyV4Public(sk.PublicKey(), e.tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	e.issuerPub = sk.PublicKey().Ed25519()
	e.tokMsg = token.PAE([]byte(token.HeaderV4Public), payload, footer, nil)
	if e.tokSig, err = sk.Sign(nil, e.tokMsg, crypto.Hash(0)); err != nil {
		b.Fatal(err)
	}
	proof, err := dpop.NewProof(e.device, "GET", e.url, e.tok, "")
	if err != nil {
		b.Fatal(err)
	}
	e.proofInput = []byte(proof[:strings.LastIndexByte(proof, '.')])
	e.proofSig = ed25519.Sign(e.device, e.proofInput)
	return e
}

func (e *benchEnv) request(b *testing.B) {
	proof, err := dpop.NewProof(e.device, "GET", e.url, e.tok, "")
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.url, nil)
	req.Header.Set("Authorization", "DPoP "+e.tok)
	req.Header.Set("DPoP", proof)
	resp, err := e.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// plainRequest is request to a handler without authentication.
func (e *benchEnv) plainRequest(b *testing.B) {
	proof, err := dpop.NewProof(e.device, "GET", e.plainURL, e.tok, "")
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.plainURL, nil)
	req.Header.Set("Authorization", "DPoP "+e.tok)
	req.Header.Set("DPoP", proof)
	resp, err := e.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

func (e *benchEnv) floor() {
	if !ed25519.Verify(e.issuerPub, e.tokMsg, e.tokSig) {
		panic("token signature")
	}
	sig := ed25519.Sign(e.device, e.proofInput)
	if !ed25519.Verify(e.devicePub, e.proofInput, sig) {
		panic("proof signature")
	}
}

// throughput runs f in n goroutines for d and returns calls per second.
func throughput(n int, d time.Duration, f func()) float64 {
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			for !stop.Load() {
				f()
				count.Add(1)
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds()
}

// BenchmarkMiddlewarePresigned isolates the server's cost: the client's
// proofs are made before each timed round (each one fresh, used once, its
// iat well within MaxProofAge), as a device makes its next proof while the
// previous request is in flight. Rounds of 100 ms with 4 client goroutines
// per CPU, then the case's own floor with as many goroutines on the same
// CPUs. Reports req/s, the floor's ops/s, p50 and p99 latency under that
// load, and the median over rounds of (req/s) / (floor ops/s), the target
// being >= 0.85.
//
//   - nocache: every request verifies the token's signature and the
//     proof's; floor = two Ed25519 verifies (floorServer);
//   - cache: verifier.WithTokenCache, the same token on every request: a
//     hit replaces the token's signature check with a SHA-256 and a map
//     lookup and verifies only the proof, so its floor is one Ed25519
//     verify (floorProof), not the two-verify floor of nocache.
func BenchmarkMiddlewarePresigned(b *testing.B) {
	for _, bc := range []struct {
		name  string
		opts  []verifier.Option
		floor func(*benchEnv) func()
	}{
		{"nocache", nil, func(e *benchEnv) func() { return e.floorServer }},
		{"cache", []verifier.Option{verifier.WithTokenCache(1024)}, func(e *benchEnv) func() { return e.floorProof }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newBenchEnv(b, bc.opts...)
			floorOp := bc.floor(e)
			clients := 4 * runtime.GOMAXPROCS(0)
			const round = 100 * time.Millisecond
			// Enough proofs for a round at twice the floor's rate.
			n := int(2 * throughput(clients, round, floorOp) * round.Seconds())
			var ratios, rates, floors, lat []float64
			for b.Loop() {
				proofs := e.proofs(b, n)
				rate, l := presignedThroughput(clients, round, proofs, func(p string) { e.requestWith(b, p) })
				floor := throughput(clients, round, floorOp)
				ratios = append(ratios, rate/floor)
				rates = append(rates, rate)
				floors = append(floors, floor)
				lat = append(lat, l...)
			}
			b.ReportMetric(benchratio.Median(rates), "req/s")
			b.ReportMetric(benchratio.Median(floors), "floor-ops/s")
			b.ReportMetric(benchratio.Median(ratios), "of-floor")
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2]/1e3, "p50-µs")
			b.ReportMetric(lat[len(lat)*99/100]/1e3, "p99-µs")
		})
	}
}

// floorServer is the server's share of the floor: the token's signature
// and the proof's, verified.
func (e *benchEnv) floorServer() {
	if !ed25519.Verify(e.issuerPub, e.tokMsg, e.tokSig) {
		panic("token signature")
	}
	if !ed25519.Verify(e.devicePub, e.proofInput, e.proofSig) {
		panic("proof signature")
	}
}

// floorProof is the floor of a token-cache hit: the proof's signature,
// verified (the token's is not checked again).
func (e *benchEnv) floorProof() {
	if !ed25519.Verify(e.devicePub, e.proofInput, e.proofSig) {
		panic("proof signature")
	}
}

// proofs makes n fresh proofs for e.url on every CPU.
func (e *benchEnv) proofs(b *testing.B, n int) []string {
	out := make([]string, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				p, err := dpop.NewProof(e.device, "GET", e.url, e.tok, "")
				if err != nil {
					failed.Store(true)
					return
				}
				out[i] = p
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		b.Fatal("NewProof failed")
	}
	return out
}

// requestWith is request with a proof made beforehand.
func (e *benchEnv) requestWith(b *testing.B, proof string) {
	req, _ := http.NewRequest("GET", e.url, nil)
	req.Header.Set("Authorization", "DPoP "+e.tok)
	req.Header.Set("DPoP", proof)
	resp, err := e.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// presignedThroughput sends each of proofs once from n goroutines, for d or
// until they run out, and returns requests per second and the latency of
// each request in ns.
func presignedThroughput(n int, d time.Duration, proofs []string, f func(string)) (float64, []float64) {
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	lats := make([][]float64, n)
	start := time.Now()
	for g := range n {
		wg.Go(func() {
			for !stop.Load() {
				i := next.Add(1) - 1
				if i >= int64(len(proofs)) {
					return
				}
				t0 := time.Now()
				f(proofs[i])
				lats[g] = append(lats[g], float64(time.Since(t0)))
			}
		})
	}
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	wg.Wait()
	elapsed := time.Since(start)
	timer.Stop()
	var all []float64
	for _, l := range lats {
		all = append(all, l...)
	}
	return float64(len(all)) / elapsed.Seconds(), all
}
