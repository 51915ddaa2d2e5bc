package revocation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/boltstore"
	"github.com/hallpass/hallpass/token"
)

// A verifier keeps a Mirror of the store and passes it to
// verifier.WithRevocation; an admin adds entries to the store.
func ExampleMirror() {
	dir, _ := os.MkdirTemp("", "revocation-example")
	defer os.RemoveAll(dir)
	store, err := boltstore.Open(filepath.Join(dir, "revocation.db"), boltstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	mirror, err := revocation.NewMirror(store, revocation.MirrorOptions{}) // fail closed after 5 s
	if err != nil {
		fmt.Println(err)
		return
	}
	mirror.Start()
	defer mirror.Close()
	<-mirror.Synced()
	// verifier.New(keySource, issuer, audience, verifier.WithRevocation(mirror))

	ttl := revocation.EntryTTL(revocation.DefaultMaxAccessLifetime, revocation.DefaultLeeway)
	e, _ := revocation.NewEntry(revocation.KindDevice, "dev_lost_phone", "reported lost", time.Now(), ttl)
	if _, err := store.Add(context.Background(), e); err != nil {
		fmt.Println(err)
		return
	}

	issued := time.Now().Add(-time.Minute)
	lost := &token.Claims{Subject: "acc_1", Device: "dev_lost_phone", ID: "jti_1", IssuedAt: issued}
	laptop := &token.Claims{Subject: "acc_1", Device: "dev_laptop", ID: "jti_2", IssuedAt: issued}
	for mirror.CheckRevoked(context.Background(), "k4.pid.example", lost) == nil {
		time.Sleep(time.Millisecond) // milliseconds at most
	}
	fmt.Println("lost phone:", mirror.CheckRevoked(context.Background(), "k4.pid.example", lost))
	fmt.Println("laptop:", mirror.CheckRevoked(context.Background(), "k4.pid.example", laptop))
	// Output:
	// lost phone: revocation: token revoked (device)
	// laptop: <nil>
}
