package storetest

import (
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

// mustCaller checks that GetCaller reads fx's account and device as the
// single reads do.
func mustCaller(t *testing.T, s account.Store, fx fixture) {
	t.Helper()
	acc, dev, err := s.GetCaller(ctxT(t), fx.acc.ID, fx.dev.ID)
	if err != nil {
		t.Fatalf("GetCaller: %v", err)
	}
	if !equalAccount(acc, fx.acc) || !equalDevice(dev, fx.dev) {
		t.Fatalf("GetCaller:\n got %+v %+v\nwant %+v %+v", acc, dev, fx.acc, fx.dev)
	}
}

// testGetCaller: one read of an account and its device follows every
// change of either (a store may remember where an account lives), and
// refuses a device of another account.
func testGetCaller(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	a, b := newFixture(t, "Alice"), newFixture(t, "Bob")
	create(t, s, a)
	create(t, s, b)
	mustCaller(t, s, a)

	for _, tc := range []struct{ name, acc, dev string }{
		{"device of another account", a.acc.ID, b.dev.ID},
		{"unknown device", a.acc.ID, newID(t, account.DevicePrefix)},
		{"unknown account", newID(t, account.AccountPrefix), a.dev.ID},
		{"malformed account id", "x", a.dev.ID},
		{"malformed device id", a.acc.ID, "x"},
		{"ids swapped", a.dev.ID, a.acc.ID},
	} {
		_, _, err := s.GetCaller(ctx, tc.acc, tc.dev)
		wantErr(t, "GetCaller("+tc.name+")", err, account.ErrNotFound)
	}

	at := t0.Add(time.Hour)
	if err := s.EndSession(ctx, a.dev.ID, at); err != nil {
		t.Fatal(err)
	}
	a.dev.Revoked = at
	if err := s.SetBanned(ctx, a.acc.ID, true); err != nil {
		t.Fatal(err)
	}
	a.acc.Banned = true
	if err := s.RenameAccount(ctx, a.acc.ID, "Alicia", "alicia", at, at.Add(hold)); err != nil {
		t.Fatal(err)
	}
	a.acc.Username, a.acc.UsernameKey = "Alicia", "alicia"
	mustCaller(t, s, a)

	if err := s.DeleteAccount(ctx, a.acc.ID, at, at.Add(hold)); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.GetCaller(ctx, a.acc.ID, a.dev.ID)
	wantErr(t, "GetCaller(deleted account)", err, account.ErrNotFound)
	mustCaller(t, s, b)
}
