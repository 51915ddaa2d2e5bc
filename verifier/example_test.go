package verifier_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// issuerKey is a fixed key so that the examples are reproducible; a real
// issuer keeps its keys in a keys.Ring.
func issuerKey() *keys.SecretKey {
	sk, err := keys.SecretKeyFromEd25519(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	return sk
}

var issuedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mintExample(sk *keys.SecretKey) string {
	m, err := token.NewMinter(token.Config{
		Issuer:   "https://auth.example",
		Audience: "api.example",
		Now:      func() time.Time { return issuedAt },
		Rand:     bytes.NewReader(make([]byte, 16)),
	})
	if err != nil {
		panic(err)
	}
	tok, _, err := m.Mint(sk, token.Subject{Account: "acct_123", Device: "dev_456", JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
	if err != nil {
		panic(err)
	}
	return tok
}

func ExampleVerifier_Verify() {
	sk := issuerKey()
	tok := mintExample(sk)

	// The resource server trusts the issuer's public keys, and nothing else.
	ks, err := verifier.NewStaticKeySet(sk.PublicKey())
	if err != nil {
		panic(err)
	}
	// The clock is fixed for the example; by default it is time.Now, read on
	// every call.
	now := issuedAt.Add(5 * time.Minute)
	v, err := verifier.New(ks, "https://auth.example", "api.example",
		verifier.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	claims, err := v.Verify(context.Background(), tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject, claims.Device)

	// Later the same token has expired.
	now = issuedAt.Add(time.Hour)
	_, err = v.Verify(context.Background(), tok)
	fmt.Println(verifier.Code(err)+":", err)
	// Output:
	// acct_123 dev_456
	// token_expired: verifier: token expired
}

func ExampleParseKeySet() {
	sk := issuerKey()
	// The issuer publishes this document (keys.Ring.KeySet) at
	// /.well-known/hallpass/keys.
	doc, err := json.Marshal(keys.KeySetDocument{
		Issuer: "https://auth.example",
		Keys:   []keys.PublishedKey{{Kid: sk.ID(), Key: sk.PublicKey().PASERK(), Status: keys.StatusCurrent}},
	})
	if err != nil {
		panic(err)
	}
	ks, err := verifier.ParseKeySet(doc, "https://auth.example")
	if err != nil {
		panic(err)
	}
	v, err := verifier.New(ks, "https://auth.example", "api.example",
		verifier.WithClock(func() time.Time { return issuedAt }))
	if err != nil {
		panic(err)
	}
	claims, err := v.Verify(context.Background(), mintExample(sk))
	fmt.Println(claims.Subject, err)

	_, err = v.Verify(context.Background(), "v4.local.not-for-us")
	fmt.Println(verifier.Code(err)+":", err)
	// Output:
	// acct_123 <nil>
	// invalid_token: verifier: malformed token: not a v4.public token
}
