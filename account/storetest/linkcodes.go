package storetest

import (
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

const (
	linkTTL = 10 * time.Minute
	hold    = 30 * 24 * time.Hour
)

// digest stands for the issuer's keyed digest of a code: the store only
// ever sees such digests.
func digest(seed string) []byte {
	h := sha256.Sum256([]byte(seed))
	return h[:]
}

func newLink(accID, seed string, created time.Time) account.LinkCode {
	return account.LinkCode{Digest: digest(seed), AccountID: accID, Created: created, Expires: created.Add(linkTTL)}
}

func mustCreateLink(t *testing.T, s account.Store, lc account.LinkCode, maxLive int) {
	t.Helper()
	if err := s.CreateLinkCode(ctxT(t), lc, maxLive, lc.Created); err != nil {
		t.Fatalf("CreateLinkCode: %v", err)
	}
}

func mustCount(t *testing.T, s account.Store, accID string, now time.Time, want int) {
	t.Helper()
	n, err := s.CountLinkCodes(ctxT(t), accID, now)
	if err != nil || n != want {
		t.Fatalf("CountLinkCodes = %d, %v; want %d", n, err, want)
	}
}

func testLinkCodeCreate(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	a, b := newLink(fx.acc.ID, "a", t0), newLink(fx.acc.ID, "b", t0.Add(time.Minute))
	mustCreateLink(t, s, a, 2)
	mustCreateLink(t, s, b, 2)
	mustCount(t, s, fx.acc.ID, b.Created, 2)
	c := newLink(fx.acc.ID, "c", t0.Add(2*time.Minute))
	wantErr(t, "CreateLinkCode(maxLive live)", s.CreateLinkCode(ctx, c, 2, c.Created), account.ErrTooMany)
	mustCount(t, s, fx.acc.ID, c.Created, 2) // the refused code was not stored

	// Once a has expired it no longer counts and makes room.
	mustCount(t, s, fx.acc.ID, a.Expires, 1)
	c = newLink(fx.acc.ID, "c", a.Expires)
	mustCreateLink(t, s, c, 2)
	mustCount(t, s, fx.acc.ID, c.Created, 2)

	// A digest in use, whoever's it is.
	other := newFixture(t, "Bob")
	create(t, s, other)
	wantErr(t, "CreateLinkCode(own digest again)", s.CreateLinkCode(ctx, newLink(fx.acc.ID, "c", c.Created), 5, c.Created), account.ErrExists)
	wantErr(t, "CreateLinkCode(other's digest)", s.CreateLinkCode(ctx, newLink(other.acc.ID, "c", c.Created), 5, c.Created), account.ErrExists)
	mustCount(t, s, other.acc.ID, c.Created, 0)

	missing := newID(t, account.AccountPrefix)
	wantErr(t, "CreateLinkCode(missing account)", s.CreateLinkCode(ctx, newLink(missing, "m", t0), 2, t0), account.ErrNotFound)
	_, err := s.CountLinkCodes(ctx, missing, t0)
	wantErr(t, "CountLinkCodes(missing account)", err, account.ErrNotFound)
	_, err = s.CountLinkCodes(ctx, "acc_{junk}", t0)
	wantErr(t, "CountLinkCodes(junk id)", err, account.ErrNotFound)

	if err := s.SetBanned(ctx, other.acc.ID, true); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateLinkCode(banned)", s.CreateLinkCode(ctx, newLink(other.acc.ID, "d", t0), 2, t0), account.ErrBanned)
	mustCount(t, s, other.acc.ID, t0, 0)
}

func testLinkCodeInvalid(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	tests := []struct {
		name    string
		mutate  func(*account.LinkCode)
		maxLive int
	}{
		{"short digest", func(lc *account.LinkCode) { lc.Digest = lc.Digest[:8] }, 3},
		{"huge digest", func(lc *account.LinkCode) { lc.Digest = make([]byte, 1<<10) }, 3},
		{"malformed account id", func(lc *account.LinkCode) { lc.AccountID = "acc_{x}" }, 3},
		{"zero created", func(lc *account.LinkCode) { lc.Created = time.Time{} }, 3},
		{"already expired", func(lc *account.LinkCode) { lc.Expires = lc.Created }, 3},
		{"zero maxLive", func(*account.LinkCode) {}, 0},
	}
	for _, tc := range tests {
		lc := newLink(fx.acc.ID, tc.name, t0)
		tc.mutate(&lc)
		if err := s.CreateLinkCode(ctxT(t), lc, tc.maxLive, t0); !errors.Is(err, account.ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", tc.name, err)
		}
	}
	mustCount(t, s, fx.acc.ID, t0, 0)
}

func testLinkCodeRedeem(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	lc := newLink(fx.acc.ID, "a", t0)
	mustCreateLink(t, s, lc, 3)
	now := t0.Add(linkTTL - time.Nanosecond) // the last instant it lives
	dev, sess := newDevice(t, "", now)       // the store binds it to the code's account
	acc, err := s.RedeemLinkCode(ctx, lc.Digest, now, dev, sess)
	if err != nil || !equalAccount(acc, fx.acc) {
		t.Fatalf("RedeemLinkCode = %+v, %v; want the code's account", acc, err)
	}
	dev.AccountID, sess.AccountID = fx.acc.ID, fx.acc.ID
	mustDevice(t, s, dev)
	mustSession(t, s, sess)
	devs, err := s.ListDevices(ctx, fx.acc.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("ListDevices after redeem = %d, %v; want 2", len(devs), err)
	}
	wantOutcome(t, refresh(t, s, req(dev.ID, 1, now.Add(time.Minute), "s2")), account.RefreshAdvanced, "s2")
	mustCount(t, s, fx.acc.ID, now, 0)

	// Used, wrong, malformed: one answer.
	for name, d := range map[string][]byte{"used": lc.Digest, "wrong": digest("b"), "malformed": []byte("short")} {
		dev2, sess2 := newDevice(t, "", now)
		_, err = s.RedeemLinkCode(ctx, d, now, dev2, sess2)
		wantErr(t, "RedeemLinkCode("+name+")", err, account.ErrNotFound)
		mustAbsent(t, s, "", dev2.ID)
	}
	mustState(t, s, fx)
}

// testLinkCodeRefused: a refused redemption stores nothing; whether the
// code survives depends on why it was refused.
func testLinkCodeRefused(t *testing.T, f Factory) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, s account.Store, fx fixture)
		mutate func(*account.Device, *account.Session)
		at     time.Duration // after the code's creation
		want   error
		kept   bool
	}{
		{"expired", nil, nil, linkTTL, account.ErrNotFound, false},
		{"long expired", nil, nil, 2 * linkTTL, account.ErrNotFound, false},
		{"banned", func(t *testing.T, s account.Store, fx fixture) {
			if err := s.SetBanned(ctxT(t), fx.acc.ID, true); err != nil {
				t.Fatal(err)
			}
		}, nil, time.Minute, account.ErrBanned, true},
		{"invalid device", nil, func(d *account.Device, s *account.Session) { d.JKT = "" }, time.Minute, account.ErrInvalidRequest, true},
		{"device id in use", nil, nil, time.Minute, account.ErrExists, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := f.New(t)
			fx := newFixture(t, "Alice")
			create(t, s, fx)
			lc := newLink(fx.acc.ID, "a", t0)
			mustCreateLink(t, s, lc, 3)
			if tc.setup != nil {
				tc.setup(t, s, fx)
			}
			dev, sess := newDevice(t, "", t0.Add(tc.at))
			if tc.mutate != nil {
				tc.mutate(&dev, &sess)
			}
			if errors.Is(tc.want, account.ErrExists) {
				dev.ID, sess.DeviceID = fx.dev.ID, fx.dev.ID
			}
			_, err := s.RedeemLinkCode(ctxT(t), lc.Digest, t0.Add(tc.at), dev, sess)
			wantErr(t, "RedeemLinkCode", err, tc.want)
			if err := s.SetBanned(ctxT(t), fx.acc.ID, false); err != nil {
				t.Fatal(err)
			}
			mustState(t, s, fx)
			if dev.ID != fx.dev.ID {
				mustAbsent(t, s, "", dev.ID)
			}
			// The same redemption, now with nothing wrong but the time.
			dev, sess = newDevice(t, "", t0.Add(tc.at))
			_, err = s.RedeemLinkCode(ctxT(t), lc.Digest, t0.Add(tc.at), dev, sess)
			if tc.kept != (err == nil) {
				t.Fatalf("redeem after the refusal: %v; want the code kept: %v", err, tc.kept)
			}
		})
	}
}

// testLinkCodeConcurrent: 16 devices redeem one code at once; exactly one
// joins.
func testLinkCodeConcurrent(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	lc := newLink(fx.acc.ID, "a", t0)
	mustCreateLink(t, s, lc, 3)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		dev, sess := newDevice(t, "", t0.Add(time.Minute))
		wg.Go(func() {
			<-start
			_, errs[i] = s.RedeemLinkCode(ctxT(t), lc.Digest, t0.Add(time.Minute), dev, sess)
		})
	}
	close(start)
	wg.Wait()
	wantOneWinner(t, "RedeemLinkCode", errs)
	devs, err := s.ListDevices(ctxT(t), fx.acc.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("ListDevices = %d, %v; want 2", len(devs), err)
	}
}

// wantOneWinner: exactly one call succeeded and every other got
// ErrNotFound.
func wantOneWinner(t *testing.T, what string, errs []error) {
	t.Helper()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, account.ErrNotFound):
			t.Fatalf("%s %d: %v, want nil or ErrNotFound", what, i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%s: %d of %d concurrent calls succeeded, want exactly 1", what, won, len(errs))
	}
}

// testLinkCodeSignOut: a step that ends every session of an account
// (EndAccountSessions: an account revocation, a ban; a recovery that signs
// the other devices out) voids the account's live link codes in the same
// step. Otherwise a code made on a device that was then signed out (a
// stolen phone) brings a new device in afterwards, and an account left with
// no live device, or unbanned, is signed in again without a recovery code.
func testLinkCodeSignOut(t *testing.T, f Factory) {
	at := t0.Add(time.Minute) // the codes live until t0 + linkTTL
	tests := []struct {
		name string
		end  func(t *testing.T, s account.Store, fx *fixture) error
		kept bool
	}{
		{"EndAccountSessions", func(t *testing.T, s account.Store, fx *fixture) error {
			_, err := s.EndAccountSessions(ctxT(t), fx.acc.ID, at)
			return err
		}, false},
		{"recovery signing the others out", func(t *testing.T, s account.Store, fx *fixture) error {
			mustSetRecovery(t, s, fx, salt1, digests("r1"))
			dev, sess := newDevice(t, "", at)
			_, err := s.UseRecoveryCode(ctxT(t), fx.acc.ID, digest("r1"), dev, sess, true, at)
			return err
		}, false},
		{"recovery keeping the others", func(t *testing.T, s account.Store, fx *fixture) error {
			mustSetRecovery(t, s, fx, salt1, digests("r1"))
			dev, sess := newDevice(t, "", at)
			_, err := s.UseRecoveryCode(ctxT(t), fx.acc.ID, digest("r1"), dev, sess, false, at)
			return err
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := f.New(t)
			fx := newFixture(t, "Alice")
			create(t, s, fx)
			other := newFixture(t, "Bob")
			create(t, s, other)
			a, b := newLink(fx.acc.ID, "a", t0), newLink(fx.acc.ID, "b", t0)
			mustCreateLink(t, s, a, 3)
			mustCreateLink(t, s, b, 3)
			ob := newLink(other.acc.ID, "other", t0)
			mustCreateLink(t, s, ob, 3)
			if err := tc.end(t, s, &fx); err != nil {
				t.Fatalf("ending the sessions: %v", err)
			}
			want := map[bool]int{true: 2, false: 0}[tc.kept]
			mustCount(t, s, fx.acc.ID, at, want)
			dev, sess := newDevice(t, "", at)
			_, err := s.RedeemLinkCode(ctxT(t), a.Digest, at, dev, sess)
			if tc.kept != (err == nil) {
				t.Fatalf("RedeemLinkCode after %s: %v; want the code kept: %v", tc.name, err, tc.kept)
			}
			if !tc.kept {
				wantErr(t, "RedeemLinkCode(voided)", err, account.ErrNotFound)
				mustAbsent(t, s, "", dev.ID)
			}
			// Another account's codes are untouched.
			mustCount(t, s, other.acc.ID, at, 1)
			odev, osess := newDevice(t, "", at)
			if _, err := s.RedeemLinkCode(ctxT(t), ob.Digest, at, odev, osess); err != nil {
				t.Fatalf("RedeemLinkCode(other account's code): %v", err)
			}
			// New codes can be made again (a device joined by recovery).
			mustCreateLink(t, s, newLink(fx.acc.ID, "c", at), 3)
		})
	}
}
