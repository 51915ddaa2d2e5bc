package storetest

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

var (
	salt1 = []byte("salt-one-16bytes")
	salt2 = []byte("salt-two-16bytes")
)

func digests(seeds ...string) [][]byte {
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = digest(s)
	}
	slices.SortFunc(out, bytes.Compare) // the order every Store returns
	return out
}

func mustSetRecovery(t *testing.T, s account.Store, fx *fixture, salt []byte, codes [][]byte) {
	t.Helper()
	if err := s.SetRecoveryCodes(ctxT(t), fx.acc.ID, salt, codes); err != nil {
		t.Fatalf("SetRecoveryCodes: %v", err)
	}
	fx.acc.RecoverySalt, fx.acc.RecoveryCodes = salt, codes
	mustAccount(t, s, fx.acc.ID, fx.acc)
}

// fixtureWithDevices: an account whose first device is live, a second
// live one and a third whose session ended at t0+1m.
func fixtureWithDevices(t *testing.T, s account.Store, name string) (fx fixture, live, ended account.Device) {
	t.Helper()
	fx = newFixture(t, name)
	create(t, s, fx)
	live, liveSess := newDevice(t, fx.acc.ID, t0)
	ended, endedSess := newDevice(t, fx.acc.ID, t0)
	for _, d := range []struct {
		dev  account.Device
		sess account.Session
	}{{live, liveSess}, {ended, endedSess}} {
		if err := s.AddDevice(ctxT(t), d.dev, d.sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndSession(ctxT(t), ended.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ended.Revoked = t0.Add(time.Minute)
	return fx, live, ended
}

func testRecoverySet(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	mustSetRecovery(t, s, &fx, salt1, digests("r1", "r2", "r3"))
	got, err := s.GetAccountByUsername(ctx, "alice")
	if err != nil || !equalAccount(got, fx.acc) || got.RecoveryCodesLeft() != 3 {
		t.Fatalf("GetAccountByUsername = %+v, %v", got, err)
	}
	// A new set replaces the old one, salt included.
	mustSetRecovery(t, s, &fx, salt2, digests("r4", "r5"))
	dev, sess := newDevice(t, "", t0)
	_, err = s.UseRecoveryCode(ctx, fx.acc.ID, digest("r1"), dev, sess, false, t0.Add(time.Hour))
	wantErr(t, "UseRecoveryCode(replaced code)", err, account.ErrNotFound)
	mustSetRecovery(t, s, &fx, salt2, nil) // an empty set clears the codes

	wantErr(t, "SetRecoveryCodes(missing)", s.SetRecoveryCodes(ctx, newID(t, account.AccountPrefix), salt1, digests("x")), account.ErrNotFound)
	wantErr(t, "SetRecoveryCodes(junk id)", s.SetRecoveryCodes(ctx, "acc_{x}", salt1, digests("x")), account.ErrNotFound)
	tests := []struct {
		name  string
		salt  []byte
		codes [][]byte
	}{
		{"no salt", nil, digests("x")},
		{"huge salt", make([]byte, 1<<10), digests("x")},
		{"short digest", salt1, [][]byte{[]byte("short")}},
		{"duplicate digest", salt1, [][]byte{digest("x"), digest("x")}},
		{"too many", salt1, make([][]byte, account.MaxRecoveryCodes+1)},
	}
	for _, tc := range tests {
		if err := s.SetRecoveryCodes(ctx, fx.acc.ID, tc.salt, tc.codes); !errors.Is(err, account.ErrInvalidRequest) {
			t.Errorf("SetRecoveryCodes(%s): %v, want ErrInvalidRequest", tc.name, err)
		}
	}
	mustAccount(t, s, fx.acc.ID, fx.acc)
}

func testRecoveryAdd(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	add := func(salt []byte, seed string, maxCodes int) error {
		return s.AddRecoveryCode(ctx, fx.acc.ID, salt, digest(seed), maxCodes)
	}
	// No salt yet: the first support code sets it.
	if err := add(salt1, "s1", 3); err != nil {
		t.Fatalf("AddRecoveryCode: %v", err)
	}
	fx.acc.RecoverySalt, fx.acc.RecoveryCodes = salt1, digests("s1")
	mustAccount(t, s, fx.acc.ID, fx.acc)
	wantErr(t, "AddRecoveryCode(other salt)", add(salt2, "s2", 3), account.ErrInvalidRequest)
	if err := add(salt1, "s1", 1); err != nil { // already there: a no-op, even at the limit
		t.Fatalf("AddRecoveryCode(again): %v", err)
	}
	for _, seed := range []string{"s2", "s3"} {
		if err := add(salt1, seed, 3); err != nil {
			t.Fatalf("AddRecoveryCode(%s): %v", seed, err)
		}
	}
	wantErr(t, "AddRecoveryCode(maxCodes)", add(salt1, "s4", 3), account.ErrTooMany)
	wantErr(t, "AddRecoveryCode(zero maxCodes)", add(salt1, "s4", 0), account.ErrInvalidRequest)
	wantErr(t, "AddRecoveryCode(short digest)", s.AddRecoveryCode(ctx, fx.acc.ID, salt1, []byte("x"), 9), account.ErrInvalidRequest)
	wantErr(t, "AddRecoveryCode(missing)", s.AddRecoveryCode(ctx, newID(t, account.AccountPrefix), salt1, digest("s5"), 9), account.ErrNotFound)
	fx.acc.RecoveryCodes = digests("s1", "s2", "s3")
	mustAccount(t, s, fx.acc.ID, fx.acc)

	// After SetRecoveryCodes the support code uses the set's salt.
	mustSetRecovery(t, s, &fx, salt2, digests("r1"))
	wantErr(t, "AddRecoveryCode(old salt)", add(salt1, "s6", 9), account.ErrInvalidRequest)
	if err := add(salt2, "s6", 9); err != nil {
		t.Fatalf("AddRecoveryCode(set's salt): %v", err)
	}
	fx.acc.RecoveryCodes = digests("r1", "s6")
	mustAccount(t, s, fx.acc.ID, fx.acc)
}

func testRecoveryUse(t *testing.T, f Factory) {
	for _, signOut := range []bool{true, false} {
		name := map[bool]string{true: "sign out others", false: "keep others"}[signOut]
		t.Run(name, func(t *testing.T) {
			s := f.New(t)
			fx, live, ended := fixtureWithDevices(t, s, "Alice")
			mustSetRecovery(t, s, &fx, salt1, digests("r1", "r2"))
			now := t0.Add(time.Hour)
			dev, sess := newDevice(t, "", now)
			got, err := s.UseRecoveryCode(ctxT(t), fx.acc.ID, digest("r1"), dev, sess, signOut, now)
			if err != nil {
				t.Fatalf("UseRecoveryCode: %v", err)
			}
			var want []string
			if signOut {
				want = []string{fx.dev.ID, live.ID}
				slices.Sort(want)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("ended %q, want %q", got, want)
			}
			dev.AccountID, sess.AccountID = fx.acc.ID, fx.acc.ID
			mustDevice(t, s, dev)
			mustSession(t, s, sess)
			wantOutcome(t, refresh(t, s, req(dev.ID, 1, now, "n2")), account.RefreshAdvanced, "n2")
			mustDevice(t, s, ended) // ended before: its time stays
			others := map[bool]account.RefreshOutcome{true: account.RefreshRejected, false: account.RefreshAdvanced}[signOut]
			for _, id := range []string{fx.dev.ID, live.ID} {
				wantOutcome(t, refresh(t, s, req(id, 1, now, "o2")), others, "o2")
			}
			fx.acc.RecoveryCodes = digests("r2")
			mustAccount(t, s, fx.acc.ID, fx.acc)
		})
	}
}

func testRecoveryRefused(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	mustSetRecovery(t, s, &fx, salt1, digests("r1"))
	now := t0.Add(time.Hour)
	use := func(accID string, d []byte, mutate func(*account.Device, *account.Session)) error {
		dev, sess := newDevice(t, "", now)
		if mutate != nil {
			mutate(&dev, &sess)
		}
		_, err := s.UseRecoveryCode(ctx, accID, d, dev, sess, true, now)
		return err
	}
	wantErr(t, "UseRecoveryCode(wrong code)", use(fx.acc.ID, digest("r2"), nil), account.ErrNotFound)
	wantErr(t, "UseRecoveryCode(malformed code)", use(fx.acc.ID, []byte("short"), nil), account.ErrNotFound)
	wantErr(t, "UseRecoveryCode(missing account)", use(newID(t, account.AccountPrefix), digest("r1"), nil), account.ErrNotFound)
	wantErr(t, "UseRecoveryCode(junk account)", use("acc_{x}", digest("r1"), nil), account.ErrNotFound)
	wantErr(t, "UseRecoveryCode(invalid device)", use(fx.acc.ID, digest("r1"), func(d *account.Device, _ *account.Session) { d.JKT = "" }), account.ErrInvalidRequest)
	wantErr(t, "UseRecoveryCode(device id in use)", use(fx.acc.ID, digest("r1"), func(d *account.Device, se *account.Session) {
		d.ID, se.DeviceID = fx.dev.ID, fx.dev.ID
	}), account.ErrExists)
	if err := s.SetBanned(ctx, fx.acc.ID, true); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "UseRecoveryCode(banned)", use(fx.acc.ID, digest("r1"), nil), account.ErrBanned)
	if err := s.SetBanned(ctx, fx.acc.ID, false); err != nil {
		t.Fatal(err)
	}
	mustState(t, s, fx) // every refusal changed nothing, the code is kept
	if err := use(fx.acc.ID, digest("r1"), nil); err != nil {
		t.Fatalf("UseRecoveryCode after the refusals: %v", err)
	}
	wantErr(t, "UseRecoveryCode(used)", use(fx.acc.ID, digest("r1"), nil), account.ErrNotFound)
}

// testRecoveryConcurrent: 16 devices use one recovery code at once;
// exactly one joins.
func testRecoveryConcurrent(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	mustSetRecovery(t, s, &fx, salt1, digests("r1", "r2"))
	const n = 16
	now := t0.Add(time.Hour)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		dev, sess := newDevice(t, "", now)
		wg.Go(func() {
			<-start
			_, errs[i] = s.UseRecoveryCode(ctxT(t), fx.acc.ID, digest("r1"), dev, sess, i%2 == 0, now)
		})
	}
	close(start)
	wg.Wait()
	wantOneWinner(t, "UseRecoveryCode", errs)
	devs, err := s.ListDevices(ctxT(t), fx.acc.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("ListDevices = %d, %v; want 2", len(devs), err)
	}
	fx.acc.RecoveryCodes = digests("r2")
	mustAccount(t, s, fx.acc.ID, fx.acc)
}

func testEndAccountSessions(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx, live, ended := fixtureWithDevices(t, s, "Alice")
	other := newFixture(t, "Bob")
	create(t, s, other)
	at := t0.Add(time.Hour)
	got, err := s.EndAccountSessions(ctx, fx.acc.ID, at)
	want := []string{fx.dev.ID, live.ID}
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("EndAccountSessions = %q, %v; want %q", got, err, want)
	}
	for _, id := range want {
		wantOutcome(t, refresh(t, s, req(id, 1, at, "x")), account.RefreshRejected, "")
		sess, err := s.GetSession(ctx, id)
		if err != nil || !sess.Ended.Equal(at) {
			t.Fatalf("session after EndAccountSessions: %+v, %v", sess, err)
		}
		dev, err := s.GetDevice(ctx, id)
		if err != nil || !dev.Revoked.Equal(at) {
			t.Fatalf("device after EndAccountSessions: %+v, %v", dev, err)
		}
	}
	mustDevice(t, s, ended) // ended before: its time stays
	got, err = s.EndAccountSessions(ctx, fx.acc.ID, at.Add(time.Hour))
	if err != nil || len(got) != 0 {
		t.Fatalf("second EndAccountSessions = %q, %v; want none", got, err)
	}
	mustState(t, s, other)
	mustAccount(t, s, fx.acc.ID, fx.acc) // the account lives on: a new device may join
	dev, sess := newDevice(t, fx.acc.ID, at)
	if err := s.AddDevice(ctx, dev, sess); err != nil {
		t.Fatalf("AddDevice after EndAccountSessions: %v", err)
	}
	_, err = s.EndAccountSessions(ctx, newID(t, account.AccountPrefix), at)
	wantErr(t, "EndAccountSessions(missing)", err, account.ErrNotFound)
	_, err = s.EndAccountSessions(ctx, fx.acc.ID, time.Time{})
	wantErr(t, "EndAccountSessions(zero time)", err, account.ErrInvalidRequest)
}
