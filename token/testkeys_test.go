package token

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
)

// Deterministic fixtures: a fixed seed, a fixed clock and a fixed random
// stream, so that tokens (Ed25519 is deterministic) are reproducible.

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

func testSecretKey(t testing.TB, seedByte byte) *keys.SecretKey {
	t.Helper()
	sk, err := keys.SecretKeyFromEd25519(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seedByte}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// countingReader yields 0, 1, 2, ... forever.
type countingReader struct{ n byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

func testMinter(t testing.TB, mut func(*Config)) *Minter {
	t.Helper()
	cfg := Config{
		Issuer:   "https://issuer.example",
		Audience: "api.example",
		Now:      func() time.Time { return testNow },
		Rand:     &countingReader{},
	}
	if mut != nil {
		mut(&cfg)
	}
	m, err := NewMinter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var testSubject = Subject{Account: "acct_123", Device: "dev_456", JKT: testJKT}
