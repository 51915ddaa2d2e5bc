package boltstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
)

// TestAbandonedRefreshChangesNothing: a refresh whose caller gave up (its
// request answered 503, "nothing changed") while the commit waited behind
// a stalled writer must change nothing, so the client's retry with the
// same token advances instead of being taken for a reuse that ends the
// session. Reproduction before the fix: the transaction ran when the
// writer was released, advanced the counter with a grace window already
// past, and the retry logged the device out.
func TestAbandonedRefreshChangesNothing(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "a.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	acc := account.Account{ID: mustID(t, account.AccountPrefix), Username: "u", UsernameKey: "u", Created: now}
	devID := mustID(t, account.DevicePrefix)
	dev := account.Device{ID: devID, AccountID: acc.ID, JKT: "jkt", Created: now, LastUsed: now}
	sess := account.Session{DeviceID: devID, AccountID: acc.ID, JKT: "jkt", Created: now, LastUsed: now, Expires: now.Add(time.Hour)}
	if err := s.CreateAccount(context.Background(), acc, dev, sess); err != nil {
		t.Fatal(err)
	}
	req := account.RefreshRequest{DeviceID: devID, Counter: 0, Now: now, Grace: 50 * time.Millisecond, Successor: []byte("s1")}

	release := boltstore.HoldWriter(s)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := s.Refresh(ctx, req); done <- err }()
	time.Sleep(300 * time.Millisecond) // past the caller's deadline and the grace window
	release()
	if err := <-done; !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("abandoned refresh: %v, want ErrUnavailable", err)
	}
	got, err := s.GetSession(context.Background(), devID)
	if err != nil || got.Counter != 0 {
		t.Fatalf("session after the abandoned refresh: counter %d, %v; want 0", got.Counter, err)
	}
	req.Now = time.Now().UTC()
	res, err := s.Refresh(context.Background(), req)
	if err != nil || res.Outcome != account.RefreshAdvanced {
		t.Fatalf("the client's retry: %v, %v; want advanced", res.Outcome, err)
	}
}

func mustID(t *testing.T, prefix string) string {
	t.Helper()
	id, err := account.NewID(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
