package issuer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/refresh"
)

// An issuer on the embedded store, and one device signing up and calling
// /v1/me with its DPoP-bound token.
func Example() {
	dir, _ := os.MkdirTemp("", "hallpass-example")
	defer os.RemoveAll(dir)
	store, _ := boltstore.Open(filepath.Join(dir, "hallpass.db"), boltstore.Options{})
	defer store.Close()
	ring, _ := keys.NewRing(nil, time.Now())
	local, _ := keys.GenerateLocalKey(nil)
	codec, _ := refresh.NewCodec(time.Now, local)
	replay, _ := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	limiter, _ := ratelimit.NewMemory(ratelimit.MemoryOptions{}) // redislimit for several nodes

	hs := httptest.NewUnstartedServer(nil)
	hs.Start()
	defer hs.Close()
	srv, err := issuer.New(issuer.Config{
		PublicURL: hs.URL, // what clients put in the proof's htu
		Store:     store,
		Keys:      ring,
		Refresh:   codec,
		DPoP:      issuer.DPoPConfig{Replay: replay},
		Limiter:   limiter, // signup budgets (the defaults: SignupPerIP, SignupGlobal, ...)
	})
	if err != nil {
		panic(err)
	}
	hs.Config.Handler = srv.Handler()

	// The device: a key that never leaves it.
	_, deviceKey, _ := ed25519.GenerateKey(rand.Reader)

	proof, _ := dpop.NewProof(deviceKey, "POST", hs.URL+"/v1/accounts", "", "")
	req, _ := http.NewRequest("POST", hs.URL+"/v1/accounts", strings.NewReader(`{"username":"Alice"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", proof)
	res, _ := http.DefaultClient.Do(req)
	var signup struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	json.NewDecoder(res.Body).Decode(&signup)
	res.Body.Close()
	fmt.Println(res.StatusCode, signup.TokenType)

	proof, _ = dpop.NewProof(deviceKey, "GET", hs.URL+"/v1/me", signup.AccessToken, "")
	req, _ = http.NewRequest("GET", hs.URL+"/v1/me", nil)
	req.Header.Set("Authorization", "DPoP "+signup.AccessToken)
	req.Header.Set("DPoP", proof)
	res, _ = http.DefaultClient.Do(req)
	var me struct {
		Username string `json:"username"`
	}
	json.NewDecoder(res.Body).Decode(&me)
	res.Body.Close()
	fmt.Println(res.StatusCode, me.Username)
	// Output:
	// 201 DPoP
	// 200 Alice
}
