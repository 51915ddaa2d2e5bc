package verifier

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/benchratio"
	"github.com/hallpass/hallpass/token"
)

// BenchmarkVerify is the whole of Verifier.Verify on a freshly minted token,
// with the real clock; BenchmarkRawEd25519Verify is ed25519.Verify alone on
// the same signed message (the token's PAE). The goal is a ratio under 1.2.

func benchToken(b *testing.B) (string, []byte, []byte) {
	b.Helper()
	sk := testKey(b, 7)
	m, err := token.NewMinter(token.Config{Issuer: testIss, Audience: testAud})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := m.Mint(sk, testSubject)
	if err != nil {
		b.Fatal(err)
	}
	payload, footer, err := token.VerifyV4Public(sk.PublicKey(), tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	m2 := token.PAE([]byte(token.HeaderV4Public), payload, footer, nil)
	return tok, m2, ed25519.Sign(ed25519.NewKeyFromSeed(seed(7)), m2)
}

func seed(b byte) []byte {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = b
	}
	return s
}

func BenchmarkVerify(b *testing.B) {
	tok, m2, _ := benchToken(b)
	ks, err := NewStaticKeySet(testKey(b, 7).PublicKey())
	if err != nil {
		b.Fatal(err)
	}
	v, err := New(ks, testIss, testAud)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(m2)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Verify(b *testing.B) {
	_, m2, sig := benchToken(b)
	pub := ed25519.NewKeyFromSeed(seed(7)).Public().(ed25519.PublicKey)
	b.SetBytes(int64(len(m2)))
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, m2, sig) {
			b.Fatal("verify")
		}
	}
}

// BenchmarkVerifyRejectExpired measures the cost of refusing an authentic
// but expired token (signature checked, then the time rule).
func BenchmarkVerifyRejectExpired(b *testing.B) {
	tok, _, _ := benchToken(b)
	v := newTestVerifier(b, WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkVerifyRejectUnknownKey measures the cheap path: a token whose kid
// is not trusted is refused before any cryptography.
func BenchmarkVerifyRejectUnknownKey(b *testing.B) {
	tok, _, _ := benchToken(b)
	ks, _ := NewStaticKeySet(testKey(b, 8).PublicKey())
	v, _ := New(ks, testIss, testAud)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkVerifyVsRaw interleaves Verify and ed25519.Verify on the same
// message and reports the median ratio of their times ("verify/raw"), with
// the median time of each: see internal/benchratio.
func BenchmarkVerifyVsRaw(b *testing.B) {
	tok, m2, sig := benchToken(b)
	pub := ed25519.NewKeyFromSeed(seed(7)).Public().(ed25519.PublicKey)
	ks, _ := NewStaticKeySet(testKey(b, 7).PublicKey())
	v, err := New(ks, testIss, testAud)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	benchratio.Run(b, "verify", func() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}, func() {
		if !ed25519.Verify(pub, m2, sig) {
			b.Fatal("verify")
		}
	})
}
