package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/hallpass/hallpass/dpop"
)

// A client makes a proof for a resource request; the server verifies it
// against the request and the key the access token is bound to.
func ExampleVerify() {
	// Client side: the device key (in practice in a secure enclave, behind
	// crypto.Signer).
	deviceKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	accessToken := "v4.public.example-token"
	proof, err := dpop.NewProof(deviceKey, "GET", "https://api.example.com/v1/me?fields=name", accessToken, "")
	if err != nil {
		panic(err)
	}

	// Server side: the token's cnf.jkt was recorded at signup.
	jkt, _ := dpop.Thumbprint(&deviceKey.PublicKey)
	replay, _ := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	req := dpop.Request{
		Method:      "GET",
		URL:         "https://api.example.com/v1/me", // as the server sees itself
		AccessToken: accessToken,
		JKT:         jkt,
	}
	opts := dpop.Options{Replay: replay}

	p, err := dpop.Verify(context.Background(), proof, req, opts)
	fmt.Println(err, p.JKT == jkt, p.Algorithm)

	// The same proof again is a replay.
	_, err = dpop.Verify(context.Background(), proof, req, opts)
	fmt.Println(err, dpop.ErrorCode(err))
	// Output:
	// <nil> true ES256
	// dpop: proof replayed invalid_dpop_proof
}

// The server nonce flow of RFC 9449 section 8.
func ExampleNonceSource() {
	key, _ := dpop.GenerateNonceKey(nil) // shared by all nodes, from config
	nonces, _ := dpop.NewNonceSource(key, dpop.NonceOptions{})
	replay, _ := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	opts := dpop.Options{Replay: replay, Nonces: nonces}
	req := dpop.Request{Method: "POST", URL: "https://auth.example.com/signup"}

	_, deviceKey, _ := ed25519.GenerateKey(nil)
	proof, _ := dpop.NewProof(deviceKey, "POST", req.URL, "", "")
	_, err := dpop.Verify(context.Background(), proof, req, opts)
	if dpop.ErrorCode(err) == dpop.CodeUseNonce {
		// Server: 400 {"error":"use_dpop_nonce"} with a DPoP-Nonce header.
		fmt.Println(dpop.CodeUseNonce, "with", dpop.NonceHeader)
		// Client: retry with the nonce.
		proof, _ = dpop.NewProof(deviceKey, "POST", req.URL, "", nonces.Issue())
		_, err = dpop.Verify(context.Background(), proof, req, opts)
	}
	fmt.Println(err)
	// Output:
	// use_dpop_nonce with DPoP-Nonce
	// <nil>
}

// Thumbprint gives the value of an access token's cnf.jkt. The key is the
// example of RFC 8037 appendix A; the result is the thumbprint given there.
func ExampleThumbprint() {
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	jkt, _ := dpop.Thumbprint(ed25519.PublicKey(x))
	fmt.Println(jkt)
	// Output:
	// kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k
}

// Errors map to RFC 9449 codes; server-side failures map to "".
func ExampleErrorCode() {
	for _, err := range []error{
		fmt.Errorf("wrapped: %w", dpop.ErrURL),
		dpop.ErrNonceInvalid,
		fmt.Errorf("%w: %w", dpop.ErrReplayCheck, errors.New("redis down")),
	} {
		fmt.Printf("%q\n", dpop.ErrorCode(err))
	}
	// Output:
	// "invalid_dpop_proof"
	// "use_dpop_nonce"
	// ""
}
