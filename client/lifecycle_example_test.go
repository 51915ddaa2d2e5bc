package client_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/hallpass/hallpass/client"
)

// exampleIssuer starts the real issuer (the issuer package on bbolt,
// nonces required) for the examples of the account life cycle.
func exampleIssuer() (url string, stop func()) {
	tb := &exampleTB{}
	return startIssuer(tb).URL, tb.close
}

// newExampleClient is a client with a new device key and an empty store:
// a new device, or a new install.
func newExampleClient(serverURL string) *client.Client {
	key, err := client.GenerateDeviceKey(client.EdDSA)
	if err != nil {
		panic(err)
	}
	c, err := client.New(serverURL, key, &client.MemoryStore{})
	if err != nil {
		panic(err)
	}
	return c
}

// A second device: the phone, signed in, makes a link code; the user types
// it on the tablet, which joins the account with a key of its own.
func ExampleClient_Link() {
	serverURL, stop := exampleIssuer()
	defer stop()
	ctx := context.Background()

	phone := newExampleClient(serverURL)
	defer phone.Close()
	if _, err := phone.Signup(ctx, "alice", "phone"); err != nil {
		panic(err)
	}
	code, _, err := phone.CreateLinkCode(ctx)
	if err != nil {
		panic(err)
	}

	tablet := newExampleClient(serverURL)
	defer tablet.Close()
	s, err := tablet.Link(ctx, code, "tablet")
	if err != nil {
		panic(err)
	}
	devs, err := tablet.Devices(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Username, len(devs))

	// The code worked once.
	late := newExampleClient(serverURL)
	defer late.Close()
	_, err = late.Link(ctx, code, "")
	fmt.Println(errors.Is(err, client.ErrInvalidLinkCode))
	// Output:
	// alice 2
	// true
}

// A lost phone: recovery codes made earlier (and kept by the user) bring
// the account back on a new phone, same id and username; the lost phone is
// signed out.
func ExampleClient_Recover() {
	serverURL, stop := exampleIssuer()
	defer stop()
	ctx := context.Background()

	old := newExampleClient(serverURL)
	defer old.Close()
	first, err := old.Signup(ctx, "bob", "old phone")
	if err != nil {
		panic(err)
	}
	codes, err := old.CreateRecoveryCodes(ctx) // shown to the user once
	if err != nil {
		panic(err)
	}

	// The old phone is lost. On the new one:
	phone := newExampleClient(serverURL)
	defer phone.Close()
	s, err := phone.Recover(ctx, "bob", codes[0], "new phone", true)
	if err != nil {
		panic(err)
	}
	me, err := phone.Me(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.AccountID == first.AccountID, s.Username, me.RecoveryCodesLeft)

	err = old.Refresh(ctx)
	fmt.Println(errors.Is(err, client.ErrSessionEnded))
	// Output:
	// true bob 9
	// true
}
