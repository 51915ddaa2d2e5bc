package main

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/verifier"
)

// rotate rotates the issuer's signing key twice, so that the new current
// key was never in the key set the example holds (it learns it by
// refetching on the unknown kid or at its next refresh), and returns it.
// The second rotation is dated keys.MinNextAge after the first, as the ring
// promotes no next key younger than that; the example's cached key set
// still predates both.
func (f *fixture) rotate(t *testing.T) *keys.SecretKey {
	t.Helper()
	now := time.Now()
	for i := range 2 {
		if err := f.issuer.ring.Rotate(rand.Reader, now.Add(time.Duration(i)*keys.MinNextAge)); err != nil {
			t.Fatal(err)
		}
	}
	return f.issuer.ring.Current()
}

// revokeKey revokes kid in the issuer's ring only (its published key set
// lists it as revoked; no revocation entry is written), and waits until the
// example's key set has refreshed and refuses it.
func (f *fixture) revokeKey(t *testing.T, kid keys.KeyID) {
	t.Helper()
	if err := f.issuer.ring.Revoke(kid, rand.Reader, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := f.keys.LookupKey(context.Background(), kid)
		if errors.Is(err, verifier.ErrKeyRevoked) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example's key set did not refuse the revoked key within 5s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeyRotation: the issuer rotates its signing key and later revokes the
// old one, and the running example follows without a restart: tokens of
// the new key are accepted while sockets of the old key stay, then the old
// key's revocation drops its sockets (token_revoked) and refuses its
// tokens, and the new key's socket stays.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	alice := newDevice(t, "acc_alice", "dev_alice")
	bob := newDevice(t, "acc_bob", "dev_bob")
	iat := time.Now().Add(-2 * time.Second)

	oldKey := f.issuer.ring.Current()
	ta := f.mint(t, alice, iat)
	a := f.runClient(t, ta, f.proof(t, alice.key, ta), "websocket")
	a.connected(alice)

	newKey := f.rotate(t)
	if newKey.ID() == oldKey.ID() {
		t.Fatal("rotation kept the signing key")
	}
	tb := f.mintWith(t, newKey, bob, iat)
	b := f.runClient(t, tb, f.proof(t, bob.key, tb), "websocket")
	b.connected(bob)
	// The old key is retired, not revoked: its tokens still verify.
	ta2 := f.mintWith(t, oldKey, alice, iat)
	f.runClient(t, ta2, f.proof(t, alice.key, ta2), "polling,websocket").connected(alice)

	f.revokeKey(t, oldKey.ID())
	a.kicked("token_revoked")
	ta3 := f.mintWith(t, oldKey, alice, iat)
	if e := f.runClient(t, ta3, f.proof(t, alice.key, ta3), "websocket").expect("connect_error"); e.Message != "token_revoked" {
		t.Fatalf("token of the revoked key: connect_error %q, want token_revoked", e.Message)
	}
	select {
	case e := <-b.events:
		t.Fatalf("the new key's socket saw %+v", e)
	case <-time.After(500 * time.Millisecond):
	}
}
