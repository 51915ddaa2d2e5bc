package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
)

func Example() {
	dir, _ := os.MkdirTemp("", "hallpass")
	defer os.RemoveAll(dir)
	store, err := boltstore.Open(filepath.Join(dir, "accounts.db"), boltstore.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()

	now := time.Now()
	accID, _ := account.NewID(account.AccountPrefix, nil)
	devID, _ := account.NewID(account.DevicePrefix, nil)
	acc := account.Account{ID: accID, Username: "Alice", UsernameKey: "alice", Created: now}
	dev := account.Device{ID: devID, AccountID: accID, Name: "phone", JKT: "thumbprint", Created: now}
	sess := account.Session{DeviceID: devID, AccountID: accID, JKT: "thumbprint", Counter: 1,
		Created: now, Expires: now.Add(90 * 24 * time.Hour)}
	fmt.Println(store.CreateAccount(ctx, acc, dev, sess))

	// Two refreshes with the same token: the second is within grace and gets
	// the same successor.
	req := account.RefreshRequest{DeviceID: devID, Counter: 1, Now: now.Add(time.Minute),
		Grace: 30 * time.Second, Idle: 30 * 24 * time.Hour, Successor: []byte("sealed-2")}
	res, _ := store.Refresh(ctx, req)
	fmt.Println(res.Outcome, string(res.Successor))
	req.Successor = []byte("sealed-2b")
	res, _ = store.Refresh(ctx, req)
	fmt.Println(res.Outcome, string(res.Successor))
	// Output:
	// <nil>
	// advanced sealed-2
	// grace sealed-2
}
