package verifier

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// Deterministic fixtures: fixed keys, clock and random stream, so that the
// tokens (Ed25519 is deterministic) and the fuzz seeds are reproducible.

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testIss = "https://issuer.example"
	testAud = "api.example"
	testJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

var testSubject = token.Subject{Account: "acct_123", Device: "dev_456", JKT: testJKT}

func testKey(t testing.TB, seed byte) *keys.SecretKey {
	t.Helper()
	sk, err := keys.SecretKeyFromEd25519(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
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

// mint mints a token with sk at now.
func mint(t testing.TB, sk token.SigningKey, now time.Time) (string, *token.Claims) {
	t.Helper()
	m, err := token.NewMinter(token.Config{
		Issuer:   testIss,
		Audience: testAud,
		Now:      func() time.Time { return now },
		Rand:     &countingReader{},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, c, err := m.Mint(sk, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// newTestVerifier trusts key 7 and reads a clock fixed at testNow.
func newTestVerifier(t testing.TB, opts ...Option) *Verifier {
	t.Helper()
	ks, err := NewStaticKeySet(testKey(t, 7).PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(ks, testIss, testAud, append([]Option{WithClock(func() time.Time { return testNow })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// claimsMap is a valid claim set at testNow, to modify.
func claimsMap() map[string]any {
	return map[string]any{
		"iss": testIss,
		"aud": testAud,
		"sub": "acct_123",
		"dev": "dev_456",
		"cnf": map[string]any{"jkt": testJKT},
		"iat": rfc3339(testNow),
		"nbf": rfc3339(testNow),
		"exp": rfc3339(testNow.Add(10 * time.Minute)),
		"jti": "AAECAwQFBgcICQoLDA0ODw",
	}
}

func payloadOf(t testing.TB, mut func(map[string]any)) string {
	t.Helper()
	m := claimsMap()
	if mut != nil {
		mut(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func footerOf(kid keys.KeyID) string { return `{"kid":"` + string(kid) + `"}` }

// sign signs an arbitrary payload and footer with sk.
func sign(t testing.TB, sk *keys.SecretKey, payload, footer string) string {
	t.Helper()
	tok, err := token.SignV4Public(sk, []byte(payload), []byte(footer), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
