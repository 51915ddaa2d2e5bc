package echoauth_test

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/echoauth"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// An Echo service that accepts hallpass access tokens with DPoP proofs.
func ExampleMiddleware() {
	// The issuer's side, for the example (see verifier/remotekeys for the
	// key set of a real issuer).
	signingKey, _ := keys.GenerateSecretKey(nil)
	_, deviceKey, _ := ed25519.GenerateKey(nil)
	jkt, _ := dpop.Thumbprint(deviceKey.Public())
	minter, _ := token.NewMinter(token.Config{Issuer: "https://id.example.com", Audience: "api.example.com"})
	accessToken, _, _ := minter.Mint(signingKey, token.Subject{Account: "acc_1", Device: "dev_1", JKT: jkt})

	ks, _ := verifier.NewStaticKeySet(signingKey.PublicKey())
	v, _ := verifier.New(ks, "https://id.example.com", "api.example.com")
	srv := httptest.NewServer(nil)
	defer srv.Close()
	auth, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: srv.URL})
	if err != nil {
		panic(err)
	}

	e := echo.New()
	api := e.Group("/api", echoauth.Middleware(auth))
	api.GET("/hello", func(c echo.Context) error {
		claims, _ := echoauth.Claims(c)
		return c.String(http.StatusOK, "hello "+claims.Subject+" on "+claims.Device)
	})
	srv.Config.Handler = e

	call := func(authz string) {
		req, _ := http.NewRequest("GET", srv.URL+"/api/hello", nil)
		req.Header.Set("Authorization", authz)
		proof, _ := dpop.NewProof(deviceKey, "GET", req.URL.String(), accessToken, "")
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("WWW-Authenticate"))
			return
		}
		fmt.Println(string(body))
	}
	call("DPoP " + accessToken)
	call("Bearer " + accessToken) // refused: the token is bound to the device key
	// Output:
	// hello acc_1 on dev_1
	// 401 application/problem+json DPoP error="invalid_token", algs="ES256 EdDSA"
}
