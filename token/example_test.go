package token_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

func ExampleMinter_Mint() {
	// In production the key comes from the key ring and Now and Rand are
	// left nil (time.Now, crypto/rand). Fixed here to make the output stable.
	sk, err := keys.SecretKeyFromEd25519(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	m, err := token.NewMinter(token.Config{
		Issuer:   "https://auth.example",
		Audience: "api.example",
		Now:      func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		Rand:     bytes.NewReader(make([]byte, 16)),
	})
	if err != nil {
		panic(err)
	}
	tok, claims, err := m.Mint(sk, token.Subject{
		Account: "acct_123",
		Device:  "dev_456",
		JKT:     "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject, claims.Expiry)

	// Anyone holding the public key can check it offline.
	payload, footer, err := token.VerifyV4Public(sk.PublicKey(), tok, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n%s\n", payload, footer[:15])
	// Output:
	// acct_123 2026-03-01 12:10:00 +0000 UTC
	// {"iss":"https://auth.example","aud":"api.example","sub":"acct_123","dev":"dev_456","cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},"iat":"2026-03-01T12:00:00Z","nbf":"2026-03-01T12:00:00Z","exp":"2026-03-01T12:10:00Z","jti":"AAAAAAAAAAAAAAAAAAAAAA"}
	// {"kid":"k4.pid.
}

func ExampleUnsafeParseFooterKid() {
	sk, _ := keys.SecretKeyFromEd25519(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize)))
	tok, _ := token.SignV4Public(sk, []byte(`{}`), token.Footer{Kid: sk.ID()}.AppendJSON(nil), nil)

	// The footer is read before the signature is checked: use the kid only
	// to pick a key among those you already trust.
	f, err := token.UnsafeParseFooterKid(tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Kid == sk.ID())
	// Output: true
}
