package token

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/hallpass/hallpass/internal/benchratio"
)

// Benchmarks of the hot paths, each beside its baseline on the same message:
// BenchmarkMint vs BenchmarkRawEd25519Sign, BenchmarkVerifyV4Public vs
// BenchmarkRawEd25519Verify (the PAE message of a minted token). The
// verifier package has the end-to-end BenchmarkVerify.

type benchFixture struct {
	sk      ed25519.PrivateKey
	m2      []byte // PAE message of tok
	sig     []byte
	tok     string
	payload []byte
}

func newBenchFixture(b *testing.B) benchFixture {
	b.Helper()
	sk := testSecretKey(b, 7)
	tok, _, err := testMinter(b, nil).Mint(sk, testSubject)
	if err != nil {
		b.Fatal(err)
	}
	payload, footer, err := VerifyV4Public(sk.PublicKey(), tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)) // = testSecretKey(7)
	m2 := PAE([]byte(HeaderV4Public), payload, footer, nil)
	return benchFixture{sk: priv, m2: m2, sig: ed25519.Sign(priv, m2), tok: tok, payload: payload}
}

func BenchmarkMint(b *testing.B) {
	sk := testSecretKey(b, 7)
	m, err := NewMinter(Config{Issuer: "https://issuer.example", Audience: "api.example"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Mint(sk, testSubject); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Sign(b *testing.B) {
	f := newBenchFixture(b)
	b.SetBytes(int64(len(f.m2)))
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(f.sk, f.m2)
	}
}

func BenchmarkVerifyV4Public(b *testing.B) {
	f := newBenchFixture(b)
	pk := testSecretKey(b, 7).PublicKey()
	b.SetBytes(int64(len(f.m2)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := VerifyV4Public(pk, f.tok, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Verify(b *testing.B) {
	f := newBenchFixture(b)
	pub := f.sk.Public().(ed25519.PublicKey)
	b.SetBytes(int64(len(f.m2)))
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, f.m2, f.sig) {
			b.Fatal("verify")
		}
	}
}

func BenchmarkParseClaims(b *testing.B) {
	f := newBenchFixture(b)
	b.SetBytes(int64(len(f.payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClaims(f.payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnsafeParseFooterKid(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnsafeParseFooterKid(f.tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMintVsRaw interleaves Mint and ed25519.Sign on a message of the
// same size and reports the median ratio of their times ("mint/raw"), with
// the median time of each: see internal/benchratio.
func BenchmarkMintVsRaw(b *testing.B) {
	f := newBenchFixture(b)
	sk := testSecretKey(b, 7)
	m, err := NewMinter(Config{Issuer: "https://issuer.example", Audience: "api.example"})
	if err != nil {
		b.Fatal(err)
	}
	benchratio.Run(b, "mint", func() {
		if _, _, err := m.Mint(sk, testSubject); err != nil {
			b.Fatal(err)
		}
	}, func() {
		ed25519.Sign(f.sk, f.m2)
	})
}
