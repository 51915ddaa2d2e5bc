package flow_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/verifier"
)

// raceStore lets a test hold a sign-out's store step (EndSession,
// EndAccountSessions, DeleteAccount) until a refresh's store step has run,
// as when the two requests interleave on two nodes.
type raceStore struct {
	account.Store
	advance   func(time.Duration) // the test clock
	mu        sync.Mutex
	armed     bool
	refreshed chan struct{}
}

func (s *raceStore) arm() {
	s.mu.Lock()
	s.armed, s.refreshed = true, make(chan struct{})
	s.mu.Unlock()
}

// wait holds a sign-out's store step until the refresh's has run.
func (s *raceStore) wait() {
	s.mu.Lock()
	armed, ch := s.armed, s.refreshed
	s.mu.Unlock()
	if armed {
		<-ch
	}
}

func (s *raceStore) Refresh(ctx context.Context, req account.RefreshRequest) (account.RefreshResult, error) {
	res, err := s.Store.Refresh(ctx, req)
	s.mu.Lock()
	if s.armed {
		s.armed = false
		s.advance(time.Millisecond) // the sign-out's step comes later
		close(s.refreshed)
	}
	s.mu.Unlock()
	return res, err
}

func (s *raceStore) EndSession(ctx context.Context, id string, at time.Time) error {
	s.wait()
	return s.Store.EndSession(ctx, id, at)
}

func (s *raceStore) EndAccountSessions(ctx context.Context, id string, at time.Time) ([]string, error) {
	s.wait()
	return s.Store.EndAccountSessions(ctx, id, at)
}

func (s *raceStore) DeleteAccount(ctx context.Context, id string, now, holdUntil time.Time) error {
	s.wait()
	return s.Store.DeleteAccount(ctx, id, now, holdUntil)
}

// hookedSessions is the mirror as a SessionChecker, running hook (once)
// right after a check passed.
type hookedSessions struct {
	*revocation.Mirror
	hook func()
}

func (h *hookedSessions) CheckSession(ctx context.Context, dev, acc string, iat time.Time) error {
	err := h.Mirror.CheckSession(ctx, dev, acc, iat)
	if f := h.hook; f != nil {
		h.hook = nil
		f()
	}
	return err
}

// TestSignOutRacingRefresh: a refresh whose mirror check ran just before a
// sign-out's entry arrived, and whose store step ran before the sign-out
// ended the session, advanced the session and minted an access token
// after the entry's before. The entry does not deny that token, so without
// an entry written after the store step it passed every mirror (and the
// issuer's identity routes) for its whole lifetime after the sign-out.
func TestSignOutRacingRefresh(t *testing.T) {
	for _, tc := range []struct {
		name    string
		device  bool // a device sign-out (else the account's sessions)
		signOut func(f *flow.Flows, acc, dev string) error
	}{
		{"logout", true, func(f *flow.Flows, _, dev string) error { return f.RevokeDevice(context.Background(), dev, "logout") }},
		{"device entry", true, func(f *flow.Flows, _, dev string) error {
			_, err := f.Revoke(context.Background(), revocation.KindDevice, dev, "admin")
			return err
		}},
		{"account entry", false, func(f *flow.Flows, acc, _ string) error {
			_, err := f.Revoke(context.Background(), revocation.KindAccount, acc, "admin")
			return err
		}},
		{"sessions of a ban", false, func(f *flow.Flows, acc, _ string) error { return f.EndAccount(context.Background(), acc, "ban") }},
		{"deletion", false, func(f *flow.Flows, acc, _ string) error { return f.DeleteAccount(context.Background(), acc, "deleted") }},
	} {
		for _, late := range []bool{false, true} {
			name := tc.name + "/step within the sign-out margin"
			if late {
				name = tc.name + "/step past the sign-out margin"
			}
			t.Run(name, func(t *testing.T) { testSignOutRacingRefresh(t, tc.signOut, tc.device, late) })
		}
	}
}

// With late, the clock passes the device entry's Before (SignOutMargin
// after its making) before the refresh mints, as when the sign-out's store
// step is slow: only an entry written after the step denies that token.
// Entries written: one for a device sign-out whose step ended within the
// margin, two otherwise.
func testSignOutRacingRefresh(t *testing.T, signOut func(f *flow.Flows, acc, dev string) error, device, late bool) {
	store := &raceStore{Store: openBolt(t)}
	mf := newMarginFixture(t, store)
	fx, sessions, v, written := mf.fixture, mf.sessions, mf.v, &mf.written
	store.advance = fx.clock.Add

	k := newKey(t)
	out := fx.signup(t, k, "racer")
	fx.clock.Add(2 * time.Second)
	done := make(chan error, 1)
	sessions.hook = func() {
		// The sign-out starts: its entry is written (this node's mirror
		// applies it at once), then its store step waits for the refresh.
		store.arm()
		go func() { done <- signOut(fx.flows, out.AccountID, out.DeviceID) }()
		waitDenied(t, v, out.AccessToken)
		mint := time.Second // the refresh mints after the entry
		if late {
			mint += fx.flows.SignOutMargin()
		}
		fx.clock.Add(mint)
	}
	got, err := fx.refresh(t, k, out.RefreshToken)
	if err != nil {
		t.Fatalf("refresh racing the sign-out: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("sign-out: %v", err)
	}
	if _, err := v.Verify(context.Background(), got.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("access token minted by a refresh racing the sign-out: %v, want ErrRevoked", err)
	}
	if _, err := fx.refresh(t, k, got.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
		t.Fatalf("refresh after the sign-out: %v", err)
	}
	want := int32(2) // the first entry, the signup's none
	if device && !late {
		want = 1
	}
	if n := written.Load(); n != want {
		t.Fatalf("%d entries written, want %d", n, want)
	}
}

// waitDenied waits until the mirror denies tok.
func waitDenied(t *testing.T, v *verifier.Verifier, tok string) {
	t.Helper()
	for range 200 {
		if _, err := v.Verify(context.Background(), tok); errors.Is(err, verifier.ErrRevoked) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the sign-out's entry never reached the mirror")
}

func openBolt(t *testing.T) account.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "hallpass.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func staticKeys(t *testing.T, fx *fixture) verifier.KeySource {
	t.Helper()
	ks, err := verifier.NewStaticKeySet(fx.ring.Current().PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
