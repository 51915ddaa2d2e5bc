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
