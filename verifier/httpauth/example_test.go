package httpauth_test

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// A net/http service that accepts hallpass access tokens with DPoP proofs.
func ExampleAuthenticator_Middleware() {
	// The issuer's side, for the example: a signing key and a token for a
	// device key. A real service gets the key set from
	// verifier/remotekeys and the token from its client.
	signingKey, _ := keys.GenerateSecretKey(nil)
	_, deviceKey, _ := ed25519.GenerateKey(nil)
	jkt, _ := dpop.Thumbprint(deviceKey.Public())
	minter, _ := token.NewMinter(token.Config{Issuer: "https://id.example.com", Audience: "api.example.com"})
	accessToken, _, _ := minter.Mint(signingKey, token.Subject{Account: "acc_1", Device: "dev_1", JKT: jkt})

	// The service: trusted keys, issuer, audience, and how clients reach it.
	ks, _ := verifier.NewStaticKeySet(signingKey.PublicKey())
	v, _ := verifier.New(ks, "https://id.example.com", "api.example.com")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		c, _ := httpauth.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	})
	srv := httptest.NewServer(nil)
	defer srv.Close()
	auth, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: srv.URL})
	if err != nil {
		panic(err)
	}
	srv.Config.Handler = auth.Middleware(mux)

	// The client: a fresh proof for each request.
	call := func(withProof bool) {
		req, _ := http.NewRequest("GET", srv.URL+"/hello?lang=en", nil)
		req.Header.Set("Authorization", "DPoP "+accessToken)
		if withProof {
			proof, _ := dpop.NewProof(deviceKey, "GET", req.URL.String(), accessToken, "")
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		fmt.Println(string(body))
	}
	call(true)
	call(false)
	// Output:
	// hello acc_1
	// 401 DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"
	// {"type":"urn:hallpass:problem:invalid_dpop_proof","title":"Invalid DPoP proof","status":401,"code":"invalid_dpop_proof","detail":"A DPoP-bound token needs exactly one DPoP header with a fresh proof for this request (with ath)."}
}
