package client_test

import (
	"context"
	"testing"

	"github.com/hallpass/hallpass/client"
)

func TestDevicesEndToEnd(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	alice := ri.client(t, client.EdDSA, &client.MemoryStore{})
	if _, err := alice.Signup(ctx, "alice_dev", "phone"); err != nil {
		t.Fatal(err)
	}
	bob := ri.client(t, client.ES256, &client.MemoryStore{})
	sb, err := bob.Signup(ctx, "bob_dev", "tablet")
	if err != nil {
		t.Fatal(err)
	}
	devs, err := alice.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || !devs[0].Current || !devs[0].Active || devs[0].Name != "phone" {
		t.Fatalf("devices %+v", devs)
	}
	// Bob's device is not Alice's to revoke, and the answer does not say
	// whether it exists.
	if err := alice.RevokeDevice(ctx, sb.DeviceID); client.ErrorCode(err) != client.CodeNotFound {
		t.Fatalf("revoke another account's device: %v", err)
	}
	if _, err := bob.Me(ctx); err != nil {
		t.Fatalf("bob after the refused revoke: %v", err)
	}
	if err := alice.RevokeDevice(ctx, ""); err == nil {
		t.Fatal("empty id accepted")
	}
	// Her own device: signed out, its token refused.
	if err := alice.RevokeDevice(ctx, devs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Me(ctx); err == nil {
		t.Fatal("me after revoking the own device")
	}
}
