package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

// mustGone checks that nothing of a deleted account answers, whatever is
// asked.
func mustGone(t *testing.T, s account.Store, fx fixture, devIDs ...string) {
	t.Helper()
	ctx := ctxT(t)
	mustAbsent(t, s, fx.acc.ID, "")
	for _, id := range devIDs {
		mustAbsent(t, s, "", id)
		if res, err := s.Refresh(ctx, req(id, 1, t0.Add(time.Hour), "x")); !errors.Is(err, account.ErrNotFound) &&
			(err != nil || res.Outcome != account.RefreshRejected) {
			t.Fatalf("Refresh of a deleted account's device: %v, %v; want ErrNotFound or Rejected", res.Outcome, err)
		}
		wantErr(t, "EndSession(deleted)", s.EndSession(ctx, id, t0.Add(time.Hour)), account.ErrNotFound)
	}
	_, err := s.GetAccountByUsername(ctx, fx.acc.UsernameKey)
	wantErr(t, "GetAccountByUsername(deleted)", err, account.ErrNotFound)
	id := fx.acc.ID
	dev, sess := newDevice(t, id, t0)
	wantErr(t, "AddDevice(deleted)", s.AddDevice(ctx, dev, sess), account.ErrNotFound)
	wantErr(t, "SetBanned(deleted)", s.SetBanned(ctx, id, true), account.ErrNotFound)
	wantErr(t, "CreateLinkCode(deleted)", s.CreateLinkCode(ctx, linkBy(id, fx.dev.ID, "gone", t0), 3, t0), account.ErrNotFound)
	_, err = s.CountLinkCodes(ctx, id, t0)
	wantErr(t, "CountLinkCodes(deleted)", err, account.ErrNotFound)
	wantErr(t, "SetRecoveryCodes(deleted)", s.SetRecoveryCodes(ctx, id, salt1, digests("x")), account.ErrNotFound)
	wantErr(t, "AddRecoveryCode(deleted)", s.AddRecoveryCode(ctx, id, salt1, digest("x"), 9), account.ErrNotFound)
	_, err = s.EndAccountSessions(ctx, id, t0.Add(time.Hour))
	wantErr(t, "EndAccountSessions(deleted)", err, account.ErrNotFound)
	wantErr(t, "RenameAccount(deleted)", s.RenameAccount(ctx, id, "New", "new-"+id, t0.Add(time.Hour), t0.Add(hold)), account.ErrNotFound)
	wantErr(t, "DeleteAccount(deleted)", s.DeleteAccount(ctx, id, t0.Add(time.Hour), t0.Add(hold)), account.ErrNotFound)
}

func testDeleteAccount(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx, live, ended := fixtureWithDevices(t, s, "Alice")
	lc := newLink(fx, "a", t0)
	mustCreateLink(t, s, lc, 3)
	mustSetRecovery(t, s, &fx, salt1, digests("r1"))
	other := newFixture(t, "Bob")
	create(t, s, other)

	now := t0.Add(time.Hour)
	if err := s.DeleteAccount(ctx, fx.acc.ID, now, now.Add(hold)); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	mustGone(t, s, fx, fx.dev.ID, live.ID, ended.ID)
	dev, sess := newDevice(t, "", now)
	_, err := s.RedeemLinkCode(ctx, lc.Digest, now, dev, sess)
	wantErr(t, "RedeemLinkCode(deleted account's code)", err, account.ErrNotFound)
	_, err = s.UseRecoveryCode(ctx, fx.acc.ID, digest("r1"), dev, sess, true, now)
	wantErr(t, "UseRecoveryCode(deleted account's code)", err, account.ErrNotFound)
	mustAbsent(t, s, "", dev.ID)
	// The digest of the deleted code is free again.
	mustCreateLink(t, s, newLink(other, "a", now), 3)
	mustState(t, s, other)
	wantErr(t, "DeleteAccount(missing)", s.DeleteAccount(ctx, newID(t, account.AccountPrefix), now, now.Add(hold)), account.ErrNotFound)
	wantErr(t, "DeleteAccount(zero hold)", s.DeleteAccount(ctx, other.acc.ID, now, time.Time{}), account.ErrInvalidRequest)
	mustState(t, s, other)
}

// testDeleteHold: a deleted account's name is held until holdUntil, for
// signups and renames alike, then free.
func testDeleteHold(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	alice, carol, bob := newFixture(t, "Alice"), newFixture(t, "Carol"), newFixture(t, "Bob")
	for _, fx := range []fixture{alice, carol, bob} {
		create(t, s, fx)
	}
	now := t0.Add(time.Hour)
	until := now.Add(hold)
	for _, fx := range []fixture{alice, carol} {
		if err := s.DeleteAccount(ctx, fx.acc.ID, now, until); err != nil {
			t.Fatal(err)
		}
	}
	dup := newFixture(t, "ALICE")
	dup.acc.Created = until.Add(-time.Nanosecond)
	wantErr(t, "CreateAccount(held)", s.CreateAccount(ctx, dup.acc, dup.dev, dup.sess), account.ErrUsernameTaken)
	mustAbsent(t, s, dup.acc.ID, dup.dev.ID)
	err := s.RenameAccount(ctx, bob.acc.ID, "Carol", "carol", until.Add(-time.Nanosecond), until.Add(hold))
	wantErr(t, "RenameAccount(held)", err, account.ErrUsernameTaken)
	mustState(t, s, bob)

	dup.acc.Created = until // the hold has ended
	create(t, s, dup)
	got, err := s.GetAccountByUsername(ctx, "alice")
	if err != nil || got.ID != dup.acc.ID {
		t.Fatalf("GetAccountByUsername after the hold = %+v, %v; want the new account", got, err)
	}
	if err := s.RenameAccount(ctx, bob.acc.ID, "Carol", "carol", until, until.Add(hold)); err != nil {
		t.Fatalf("RenameAccount after the hold: %v", err)
	}
	got, err = s.GetAccountByUsername(ctx, "carol")
	if err != nil || got.ID != bob.acc.ID {
		t.Fatalf("GetAccountByUsername(carol) = %+v, %v; want bob's account", got, err)
	}
}

func testRename(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	a, b := newFixture(t, "Alice"), newFixture(t, "Bob")
	create(t, s, a)
	create(t, s, b)
	lc := newLink(a, "a", t0)
	mustCreateLink(t, s, lc, 3)
	now := t0.Add(time.Minute)
	if err := s.RenameAccount(ctx, a.acc.ID, "Alicia", "alicia", now, now.Add(hold)); err != nil {
		t.Fatalf("RenameAccount: %v", err)
	}
	a.acc.Username, a.acc.UsernameKey = "Alicia", "alicia"
	mustState(t, s, a) // by id, devices and sessions included
	mustByName(t, s, "alicia", a.acc.ID)
	_, err := s.GetAccountByUsername(ctx, "alice")
	wantErr(t, "GetAccountByUsername(old name)", err, account.ErrNotFound)

	// Everything else still works on the renamed account.
	wantOutcome(t, refresh(t, s, req(a.dev.ID, 1, now, "s2")), account.RefreshAdvanced, "s2")
	dev, sess := newDevice(t, "", now)
	acc, err := s.RedeemLinkCode(ctx, lc.Digest, now, dev, sess)
	if err != nil || acc.UsernameKey != "alicia" {
		t.Fatalf("RedeemLinkCode after rename = %+v, %v", acc, err)
	}

	for _, key := range []string{"alicia", "alice"} { // registered, held
		err := s.RenameAccount(ctx, b.acc.ID, "X", key, now, now.Add(hold))
		wantErr(t, "RenameAccount(taken "+key+")", err, account.ErrUsernameTaken)
	}
	mustState(t, s, b)
	// Its own key: a no-op, even with another display form.
	if err := s.RenameAccount(ctx, a.acc.ID, "ALICIA", "alicia", now, now.Add(hold)); err != nil {
		t.Fatalf("RenameAccount(own key): %v", err)
	}
	mustAccount(t, s, a.acc.ID, a.acc)

	wantErr(t, "RenameAccount(missing)", s.RenameAccount(ctx, newID(t, account.AccountPrefix), "Y", "y", now, now.Add(hold)), account.ErrNotFound)
	for name, args := range map[string][2]string{"empty key": {"Y", ""}, "empty display": {"", "y"}, "huge key": {"Y", string(make([]byte, 2000))}} {
		err := s.RenameAccount(ctx, b.acc.ID, args[0], args[1], now, now.Add(hold))
		wantErr(t, "RenameAccount("+name+")", err, account.ErrInvalidRequest)
	}
	wantErr(t, "RenameAccount(zero now)", s.RenameAccount(ctx, b.acc.ID, "Y", "y", time.Time{}, now), account.ErrInvalidRequest)
	mustState(t, s, b)
}

func mustByName(t *testing.T, s account.Store, key, wantID string) {
	t.Helper()
	got, err := s.GetAccountByUsername(ctxT(t), key)
	if err != nil || got.ID != wantID || got.UsernameKey != key {
		t.Fatalf("GetAccountByUsername(%q) = %+v, %v; want %s", key, got, err, wantID)
	}
}

// testRenameHold: every name an account leaves is held, for its old owner
// too, then free.
func testRenameHold(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	a := newFixture(t, "Alice")
	create(t, s, a)
	now1, now2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	until1, until2 := now1.Add(hold), now2.Add(hold)
	if err := s.RenameAccount(ctx, a.acc.ID, "Alicia", "alicia", now1, until1); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameAccount(ctx, a.acc.ID, "Alex", "alex", now2, until2); err != nil {
		t.Fatal(err)
	}
	mustByName(t, s, "alex", a.acc.ID)
	for _, key := range []string{"alice", "alicia"} {
		dup := newFixture(t, key)
		dup.acc.Created = until1.Add(-time.Nanosecond)
		wantErr(t, "CreateAccount(held "+key+")", s.CreateAccount(ctx, dup.acc, dup.dev, dup.sess), account.ErrUsernameTaken)
	}
	err := s.RenameAccount(ctx, a.acc.ID, "Alice", "alice", until1.Add(-time.Nanosecond), until1.Add(hold))
	wantErr(t, "RenameAccount(back, held)", err, account.ErrUsernameTaken)
	if err := s.RenameAccount(ctx, a.acc.ID, "Alice", "alice", until1, until1.Add(hold)); err != nil {
		t.Fatalf("RenameAccount(back, after the hold): %v", err)
	}
	mustByName(t, s, "alice", a.acc.ID)
	dup := newFixture(t, "Alicia")
	dup.acc.Created = until2.Add(-time.Nanosecond) // alicia was left at now2
	wantErr(t, "CreateAccount(alicia, held)", s.CreateAccount(ctx, dup.acc, dup.dev, dup.sess), account.ErrUsernameTaken)
	dup.acc.Created = until2
	create(t, s, dup)
	mustByName(t, s, "alicia", dup.acc.ID)
	mustByName(t, s, "alice", a.acc.ID)
	if err := s.DeleteAccount(ctx, a.acc.ID, until2, until2.Add(hold)); err != nil {
		t.Fatalf("DeleteAccount after renames: %v", err)
	}
	mustGone(t, s, a, a.dev.ID)
	mustState(t, s, dup)
	late := newFixture(t, "Alice")
	late.acc.Created = until2.Add(hold - time.Nanosecond)
	wantErr(t, "CreateAccount(alice, held after deletion)", s.CreateAccount(ctx, late.acc, late.dev, late.sess), account.ErrUsernameTaken)
}

// testRenameRace: renames and signups race for one name; exactly one wins
// and every loser keeps what it had.
func testRenameRace(t *testing.T, f Factory) {
	s := f.New(t)
	const n = 8
	renamers := make([]fixture, n)
	for i := range renamers {
		renamers[i] = newFixture(t, fmt.Sprintf("User%d", i))
		create(t, s, renamers[i])
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  []string
		start = make(chan struct{})
	)
	record := func(id string, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			wins = append(wins, id)
		case !errors.Is(err, account.ErrUsernameTaken):
			t.Errorf("racing for one name: %v", err)
		}
	}
	for i := range n {
		fx, signup := renamers[i], newFixture(t, "Target")
		wg.Go(func() {
			<-start
			record(fx.acc.ID, s.RenameAccount(ctxT(t), fx.acc.ID, "Target", "target", t0.Add(time.Hour), t0.Add(hold)))
		})
		wg.Go(func() {
			<-start
			record(signup.acc.ID, s.CreateAccount(ctxT(t), signup.acc, signup.dev, signup.sess))
		})
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d winners for one name, want 1", len(wins))
	}
	mustByName(t, s, "target", wins[0])
	for _, fx := range renamers {
		if fx.acc.ID != wins[0] {
			mustByName(t, s, fx.acc.UsernameKey, fx.acc.ID)
		}
	}
}

// testLifecycleReopen: names, holds, codes and ended sessions survive a
// restart.
func testLifecycleReopen(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	a, b, c := newFixture(t, "Alice"), newFixture(t, "Bob"), newFixture(t, "Carol")
	for _, fx := range []fixture{a, b, c} {
		create(t, s, fx)
	}
	mustSetRecovery(t, s, &a, salt1, digests("r1", "r2"))
	mustCreateLink(t, s, newLink(a, "l1", t0), 3)
	now := t0.Add(time.Minute)
	if err := s.RenameAccount(ctx, a.acc.ID, "Alicia", "alicia", now, now.Add(hold)); err != nil {
		t.Fatal(err)
	}
	a.acc.Username, a.acc.UsernameKey = "Alicia", "alicia"
	if err := s.DeleteAccount(ctx, b.acc.ID, now, now.Add(hold)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndAccountSessions(ctx, c.acc.ID, now); err != nil {
		t.Fatal(err)
	}
	c.sess.Ended, c.dev.Revoked = now, now

	s = f.Reopen(t, s)
	mustState(t, s, a)
	mustState(t, s, c)
	mustByName(t, s, "alicia", a.acc.ID)
	mustCount(t, s, a.acc.ID, now, 1)
	mustGone(t, s, b, b.dev.ID)
	for _, name := range []string{"Alice", "Bob"} {
		dup := newFixture(t, name)
		dup.acc.Created = now
		wantErr(t, "CreateAccount(held "+name+") after reopen", s.CreateAccount(ctx, dup.acc, dup.dev, dup.sess), account.ErrUsernameTaken)
	}
}
