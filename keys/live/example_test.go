package live_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/live"
	"github.com/hallpass/hallpass/refresh"
)

// An issuer serves the ring of a key directory; the admin API rotates it
// through the Ring, which stores the change before serving it.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ring")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	w, _ := keys.GenerateWrappingKey(nil) // in production: --wrap-key-file
	prot, _ := filestore.WrapKey(w)
	st, _ := filestore.New(dir, prot, nil)
	if _, err := st.Init(ctx, time.Now()); err != nil {
		log.Fatal(err)
	}

	ring, err := live.Open(ctx, st, live.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer ring.Close()
	before := ring.Current().ID()
	if err := ring.Rotate(ctx); err != nil {
		log.Fatal(err)
	}
	_, status, _ := ring.Lookup(before)
	fmt.Println("old signing key:", status)
	fmt.Println("published keys:", len(ring.KeySet("https://issuer.example").Keys))
	// Output:
	// old signing key: retired
	// published keys: 3
}

// An issuer seals refresh tokens with the codec of its Secrets and keys
// code digests with their pepper; a rotation of the refresh-token keys
// keeps the tokens sealed before it working, a rotation of the pepper
// keeps the digests made before it.
func ExampleOpenSecrets() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ring")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	w, _ := keys.GenerateWrappingKey(nil) // in production: --wrap-key-file
	prot, _ := filestore.WrapKey(w)
	st, _ := filestore.New(dir, prot, nil)
	if _, err := st.Init(ctx, time.Now()); err != nil {
		log.Fatal(err)
	}

	// FollowSecrets in a server, so that other nodes' changes are served.
	s, err := live.OpenSecrets(ctx, st, live.SecretsOptions{RefreshKeep: 90 * 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	tok, _ := s.Codec().Seal(refresh.Claims{DeviceID: "dev_example", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	digest := s.Digests([]byte("hallpass link code\x00ABCD1234EFGH"))[0]

	if err := s.RotateRefresh(ctx); err != nil {
		log.Fatal(err)
	}
	if err := s.RotatePepper(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = s.Codec().Open(tok)
	fmt.Println("old token opens:", err == nil)
	fmt.Println("refresh keys:", len(s.Codec().KeyIDs()))
	digests := s.Digests([]byte("hallpass link code\x00ABCD1234EFGH"))
	fmt.Println("digests:", len(digests), "old one kept:", string(digests[1]) == string(digest))

	if err := s.EndAllSessions(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = s.Codec().Open(tok)
	fmt.Println("after ending every session:", err)
	// Output:
	// old token opens: true
	// refresh keys: 2
	// digests: 2 old one kept: true
	// after ending every session: refresh: invalid refresh token
}
