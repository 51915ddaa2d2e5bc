package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/benchratio"
)

// The Verify benchmarks run beside the raw signature check of the same
// message (the JWS signing input), so the ratio between them is the cost of
// everything else: base64, JSON, key decoding, htu normalisation, thumbprint
// and ath hashing. They use a replay cache that always answers "not seen"
// (the same proof is verified b.N times); BenchmarkMemoryReplayCache gives
// the cache's own cost.

type nopCache struct{}

func (nopCache) Seen(context.Context, ReplayKey, time.Time, time.Time) (bool, error) {
	return false, nil
}

func benchVerify(b *testing.B, proof string) {
	req := testReq()
	req.AccessToken = testToken
	opts := Options{Replay: nopCache{}, Now: fixedNow}
	ctx := context.Background()
	if _, err := Verify(ctx, proof, req, opts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(ctx, proof, req, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func realisticProof(b *testing.B, ec bool) string {
	s := newSpec(testEd)
	if ec {
		s = newSpec(testEC)
	}
	s.claims["jti"] = "Zb1nkHh9eB3KZkQEwN1dSg"
	s.claims["ath"] = athOf(testToken)
	return s.build(b)
}

func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, realisticProof(b, true)) }

func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b, realisticProof(b, false)) }

// BenchmarkRawECDSAVerify is SHA-256 of the signing input and ecdsa.Verify
// of the proof's (r, s), nothing else.
func BenchmarkRawECDSAVerify(b *testing.B) {
	proof := realisticProof(b, true)
	dot := strings.LastIndexByte(proof, '.')
	input := []byte(proof[:dot])
	sig, _ := b64.DecodeString(proof[dot+1:])
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	pub := &testEC.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(input)
		if !ecdsa.Verify(pub, h[:], r, s) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkRawECDSAVerifyASN1 is the cheaper ecdsa.VerifyASN1 path that
// Verify itself uses (no big.Int conversion), with a precomputed DER
// signature: the strictest baseline.
func BenchmarkRawECDSAVerifyASN1(b *testing.B) {
	proof := realisticProof(b, true)
	dot := strings.LastIndexByte(proof, '.')
	input := []byte(proof[:dot])
	sig, _ := b64.DecodeString(proof[dot+1:])
	der := rawToDER(nil, sig)
	pub := &testEC.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(input)
		if !ecdsa.VerifyASN1(pub, h[:], der) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkRawEd25519Verify is ed25519.Verify of the proof's signature.
func BenchmarkRawEd25519Verify(b *testing.B) {
	proof := realisticProof(b, false)
	dot := strings.LastIndexByte(proof, '.')
	input := []byte(proof[:dot])
	sig, _ := b64.DecodeString(proof[dot+1:])
	pub := testEd.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, input, sig) {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkParseOnly is everything Verify does except the signature check.
func BenchmarkParseOnly(b *testing.B) {
	proof := realisticProof(b, true)
	b.ReportAllocs()
	for b.Loop() {
		p := new(parsedProof)
		dot1 := strings.IndexByte(proof, '.')
		dot2 := strings.LastIndexByte(proof, '.')
		hdr, _ := b64.DecodeString(proof[:dot1])
		claims, _ := b64.DecodeString(proof[dot1+1 : dot2])
		if err := p.readHeader(hdr); err != nil {
			b.Fatal(err)
		}
		if err := p.readClaims(claims); err != nil {
			b.Fatal(err)
		}
		if _, err := normalizeURL(p.htu); err != nil {
			b.Fatal(err)
		}
		_ = p.key.thumbprint()
	}
}

// BenchmarkMemoryReplayCache is one Seen of a new key per operation, from
// all Ps at once, with a clock advancing 1µs per operation so that the cache
// stays at a steady state of about 65,000 live entries (65 ms window).
func BenchmarkMemoryReplayCache(b *testing.B) {
	c, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 1 << 20, MaxEntriesPerKey: NoPerKeyLimit})
	if err != nil {
		b.Fatal(err)
	}
	var counter atomic.Uint64
	window := 65 * time.Millisecond
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := counter.Add(1)
			now := testNow.Add(time.Duration(n) * time.Microsecond)
			seen, err := c.Seen(ctx, keyN(n), now, now.Add(window))
			if err != nil || seen {
				b.Fatal(seen, err)
			}
		}
	})
}

// BenchmarkVerifyVsRaw interleaves Verify and the raw signature check of the
// same proof and reports the median ratio of their times ("verify/raw"),
// with the median time of each: see internal/benchratio. It stays
// meaningful on a loaded machine where separate benchmarks drift apart.
func BenchmarkVerifyVsRaw(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			proof := realisticProof(b, alg == "ES256")
			dot := strings.LastIndexByte(proof, '.')
			input := []byte(proof[:dot])
			sig, _ := b64.DecodeString(proof[dot+1:])
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			raw := func() bool {
				if alg == "ES256" {
					h := sha256.Sum256(input)
					return ecdsa.Verify(&testEC.PublicKey, h[:], r, s)
				}
				return ed25519.Verify(testEd.Public().(ed25519.PublicKey), input, sig)
			}
			req := testReq()
			req.AccessToken = testToken
			opts := Options{Replay: nopCache{}, Now: fixedNow}
			ctx := context.Background()
			benchratio.Run(b, "verify", func() {
				if _, err := Verify(ctx, proof, req, opts); err != nil {
					b.Fatal(err)
				}
			}, func() {
				if !raw() {
					b.Fatal("invalid")
				}
			})
		})
	}
}
