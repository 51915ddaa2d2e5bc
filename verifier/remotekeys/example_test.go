package remotekeys_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

// A verifier that follows the issuer's published key set.
func ExampleNew() {
	// An issuer publishing a key ring, for the example.
	ring, _ := keys.NewRing(nil, timeNow())
	var issuerURL string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		_ = json.NewEncoder(w).Encode(ring.KeySet(issuerURL))
	}))
	defer srv.Close()
	issuerURL = srv.URL

	ks, err := remotekeys.New(context.Background(), remotekeys.Config{
		Issuer: issuerURL,    // fetches issuerURL + /.well-known/hallpass/keys
		Client: srv.Client(), // trusts the test server's certificate
		// CacheFile: "/var/lib/myapi/hallpass-keys.json",
	})
	if err != nil {
		panic(err)
	}
	defer ks.Close() // stops the refresh goroutine

	v, _ := verifier.New(ks, issuerURL, "api.example.com")
	_ = v // v.Verify / httpauth.Config{Verifier: v, ...}

	_, err = ks.LookupKey(context.Background(), ring.Current().ID())
	fmt.Println("current key trusted:", err == nil)
	// Output: current key trusted: true
}
