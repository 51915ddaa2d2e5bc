package issuer_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// TestEntryOutlivesLoweredAccessTTL is the regression test of issue 11,
// finding 9: a revocation entry lived the *current* --access-ttl plus the
// leeway, so lowering --access-ttl while longer tokens were alive let
// revoked tokens back in. Reproduction: sign up under --access-ttl 60m,
// restart with --access-ttl 1m, log the device out (device entry, then
// living 1m30s), wait 5 minutes: the mirror dropped the entry and accepted
// the 60-minute token again for the rest of its life. Now every token,
// device and account entry lives token.MaxTTL + verifier.MaxLeeway, the
// longest any hallpass verifier can accept a token for.
func TestEntryOutlivesLoweredAccessTTL(t *testing.T) {
	rs, err := revbolt.Open(filepath.Join(t.TempDir(), "revocation.db"), revbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	e := newEnv(t, &boltBackend{}, func(c *issuer.Config) {
		c.AccessTTL = token.MaxTTL
		c.Revocations = rs
	})
	// A mirror on the issuer's clock, as a gateway's would be on its own.
	m, err := revocation.NewMirror(rs, revocation.MirrorOptions{Now: e.clock.Now, MaxStaleness: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() { m.Close() })
	<-m.Synced()

	d := e.newDevice("EdDSA")
	d.signup("longlived")
	long := d.access
	c, err := token.ParseClaims(unsafePayload(t, long))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Expiry.Sub(c.IssuedAt); got != token.MaxTTL {
		t.Fatalf("token lifetime %v, want %v", got, token.MaxTTL)
	}
	f, err := token.UnsafeParseFooterKid(long)
	if err != nil {
		t.Fatal(err)
	}

	// The operator lowers --access-ttl and restarts; the device logs out.
	e.cfg.AccessTTL = time.Minute
	e.restart()
	if r := d.logout(); r.status != 204 && r.status != 200 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	entries, _, err := rs.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var entry *revocation.Entry
	for i := range entries {
		if entries[i].Kind == revocation.KindDevice && entries[i].ID == c.Device {
			entry = &entries[i]
		}
	}
	if entry == nil {
		t.Fatal("no device entry after logout")
	}
	if want := token.MaxTTL + verifier.MaxLeeway; entry.Expires.Sub(entry.Before) != want {
		t.Fatalf("entry lives %v, want %v", entry.Expires.Sub(entry.Before), want)
	}
	// It outlives every token it denies, at any verifier's leeway.
	if !entry.Expires.After(c.Expiry.Add(verifier.MaxLeeway)) && !entry.Expires.Equal(c.Expiry.Add(verifier.MaxLeeway)) {
		t.Fatalf("entry expires %v, before the token's last accepted instant %v", entry.Expires, c.Expiry.Add(verifier.MaxLeeway))
	}

	// Time passes well beyond the new lifetime (and the old entry's 1m30s):
	// the long token is still refused.
	var advanced time.Duration
	for _, after := range []time.Duration{5 * time.Minute, 30 * time.Minute, token.MaxTTL} {
		e.clock.Advance(after - advanced)
		advanced = after
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := m.CheckRevoked(context.Background(), f.Kid, c)
			if errors.Is(err, revocation.ErrRevoked) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v after the logout the 60-minute token is accepted again: %v", after, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
