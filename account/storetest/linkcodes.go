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

// newLink is a code made by fx's first device.
func newLink(fx fixture, seed string, created time.Time) account.LinkCode {
	return linkBy(fx.acc.ID, fx.dev.ID, seed, created)
}

func linkBy(accID, devID, seed string, created time.Time) account.LinkCode {
	return account.LinkCode{Digest: digest(seed), AccountID: accID, DeviceID: devID, Created: created, Expires: created.Add(linkTTL)}
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
	a, b := newLink(fx, "a", t0), newLink(fx, "b", t0.Add(time.Minute))
	mustCreateLink(t, s, a, 2)
	mustCreateLink(t, s, b, 2)
	mustCount(t, s, fx.acc.ID, b.Created, 2)
	c := newLink(fx, "c", t0.Add(2*time.Minute))
	wantErr(t, "CreateLinkCode(maxLive live)", s.CreateLinkCode(ctx, c, 2, c.Created), account.ErrTooMany)
	mustCount(t, s, fx.acc.ID, c.Created, 2) // the refused code was not stored

	// Once a has expired it no longer counts and makes room.
	mustCount(t, s, fx.acc.ID, a.Expires, 1)
	c = newLink(fx, "c", a.Expires)
	mustCreateLink(t, s, c, 2)
	mustCount(t, s, fx.acc.ID, c.Created, 2)

	// A digest in use, whoever's it is.
	other := newFixture(t, "Bob")
	create(t, s, other)
	wantErr(t, "CreateLinkCode(own digest again)", s.CreateLinkCode(ctx, newLink(fx, "c", c.Created), 5, c.Created), account.ErrExists)
	wantErr(t, "CreateLinkCode(other's digest)", s.CreateLinkCode(ctx, newLink(other, "c", c.Created), 5, c.Created), account.ErrExists)
	mustCount(t, s, other.acc.ID, c.Created, 0)

	missing := newID(t, account.AccountPrefix)
	wantErr(t, "CreateLinkCode(missing account)", s.CreateLinkCode(ctx, linkBy(missing, newID(t, account.DevicePrefix), "m", t0), 2, t0), account.ErrNotFound)
	_, err := s.CountLinkCodes(ctx, missing, t0)
	wantErr(t, "CountLinkCodes(missing account)", err, account.ErrNotFound)
	_, err = s.CountLinkCodes(ctx, "acc_{junk}", t0)
	wantErr(t, "CountLinkCodes(junk id)", err, account.ErrNotFound)

	if err := s.SetBanned(ctx, other.acc.ID, true); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateLinkCode(banned)", s.CreateLinkCode(ctx, newLink(other, "d", t0), 2, t0), account.ErrBanned)
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
		{"no device id", func(lc *account.LinkCode) { lc.DeviceID = "" }, 3},
		{"malformed device id", func(lc *account.LinkCode) { lc.DeviceID = "dev_{x}" }, 3},
		{"zero created", func(lc *account.LinkCode) { lc.Created = time.Time{} }, 3},
		{"already expired", func(lc *account.LinkCode) { lc.Expires = lc.Created }, 3},
		{"zero maxLive", func(*account.LinkCode) {}, 0},
	}
	for _, tc := range tests {
		lc := newLink(fx, tc.name, t0)
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
	lc := newLink(fx, "a", t0)
	mustCreateLink(t, s, lc, 3)
	now := t0.Add(linkTTL - time.Nanosecond) // the last instant it lives
	mustMaker(t, s, lc, now)
	dev, sess := newDevice(t, "", now) // the store binds it to the code's account
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
		_, err = s.LinkCodeMaker(ctx, d, now)
		wantErr(t, "LinkCodeMaker("+name+")", err, account.ErrNotFound)
	}
	// Expired: not reported.
	late := newLink(fx, "c", t0)
	mustCreateLink(t, s, late, 3)
	_, err = s.LinkCodeMaker(ctx, late.Digest, t0.Add(linkTTL))
	wantErr(t, "LinkCodeMaker(expired)", err, account.ErrNotFound)
	mustState(t, s, fx)
}

// mustMaker: LinkCodeMaker reports the live code's account, maker and
// creation.
func mustMaker(t *testing.T, s account.Store, lc account.LinkCode, now time.Time) {
	t.Helper()
	got, err := s.LinkCodeMaker(ctxT(t), lc.Digest, now)
	if err != nil || got.AccountID != lc.AccountID || got.DeviceID != lc.DeviceID || !got.Created.Equal(lc.Created) || !got.Expires.Equal(lc.Expires) {
		t.Fatalf("LinkCodeMaker = %+v, %v; want %+v", got, err, lc)
	}
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
			lc := newLink(fx, "a", t0)
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
	lc := newLink(fx, "a", t0)
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
			a, b := newLink(fx, "a", t0), newLink(fx, "b", t0)
			mustCreateLink(t, s, a, 3)
			mustCreateLink(t, s, b, 3)
			ob := newLink(other, "other", t0)
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
			// New codes can be made again, by a device that joins (as by a
			// recovery): a code is made by an active device.
			joined, jsess := newDevice(t, fx.acc.ID, at)
			if err := s.AddDevice(ctxT(t), joined, jsess); err != nil {
				t.Fatalf("AddDevice: %v", err)
			}
			mustCreateLink(t, s, linkBy(fx.acc.ID, joined.ID, "c", at), 3)
		})
	}
}

// testLinkCodeMaker: a link code is good only while the device that made
// it is active. Otherwise a thief on a stolen phone makes a code, the
// owner revokes the phone (or it logs out, or its refresh token is
// replayed), and within the code's lifetime the thief redeems it on a new
// device and is back in. The check is part of the redemption step; codes
// of the account's other devices are untouched.
func testLinkCodeMaker(t *testing.T, f Factory) {
	at := t0.Add(time.Minute) // the codes live until t0 + linkTTL
	tests := []struct {
		name string
		end  func(t *testing.T, s account.Store, maker fixture) // nil: the maker stays active
		kept bool
	}{
		{"maker active", nil, true},
		{"maker refreshed", func(t *testing.T, s account.Store, maker fixture) {
			wantOutcome(t, refresh(t, s, req(maker.dev.ID, 1, at, "s2")), account.RefreshAdvanced, "s2")
		}, true},
		{"maker revoked or logged out", func(t *testing.T, s account.Store, maker fixture) {
			if err := s.EndSession(ctxT(t), maker.dev.ID, at); err != nil {
				t.Fatalf("EndSession: %v", err)
			}
		}, false},
		{"maker's refresh token reused", func(t *testing.T, s account.Store, maker fixture) {
			wantOutcome(t, refresh(t, s, req(maker.dev.ID, 7, at, "x")), account.RefreshReused, "")
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := f.New(t)
			fx := newFixture(t, "Alice") // fx.dev is device A, the maker
			create(t, s, fx)
			b := fx
			b.dev, b.sess = newDevice(t, fx.acc.ID, t0)
			if err := s.AddDevice(ctxT(t), b.dev, b.sess); err != nil {
				t.Fatalf("AddDevice: %v", err)
			}
			byA, byB := newLink(fx, "a", t0), newLink(b, "b", t0)
			mustCreateLink(t, s, byA, 3)
			mustCreateLink(t, s, byB, 3)
			if tc.end != nil {
				tc.end(t, s, fx)
			}
			now := at.Add(time.Minute)
			dev, sess := newDevice(t, "", now)
			_, err := s.RedeemLinkCode(ctxT(t), byA.Digest, now, dev, sess)
			if tc.kept != (err == nil) {
				t.Fatalf("RedeemLinkCode(A's code) after %s: %v; want it to work: %v", tc.name, err, tc.kept)
			}
			if !tc.kept {
				wantErr(t, "RedeemLinkCode(maker gone)", err, account.ErrNotFound)
				mustAbsent(t, s, "", dev.ID)
			}
			// B's code still brings a device in.
			bdev, bsess := newDevice(t, "", now)
			if _, err := s.RedeemLinkCode(ctxT(t), byB.Digest, now, bdev, bsess); err != nil {
				t.Fatalf("RedeemLinkCode(B's code) after %s: %v", tc.name, err)
			}
		})
	}
}

// testLinkCodeMakerCreate: only an active device of the account makes a
// code.
func testLinkCodeMakerCreate(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx, other := newFixture(t, "Alice"), newFixture(t, "Bob")
	create(t, s, fx)
	create(t, s, other)
	tests := []struct {
		name  string
		maker string
		want  error
	}{
		{"another account's device", other.dev.ID, account.ErrNotFound},
		{"unknown device", newID(t, account.DevicePrefix), account.ErrNotFound},
	}
	for _, tc := range tests {
		err := s.CreateLinkCode(ctx, linkBy(fx.acc.ID, tc.maker, tc.name, t0), 3, t0)
		wantErr(t, "CreateLinkCode("+tc.name+")", err, tc.want)
	}
	if err := s.EndSession(ctx, fx.dev.ID, t0); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	err := s.CreateLinkCode(ctx, newLink(fx, "ended", t0), 3, t0)
	wantErr(t, "CreateLinkCode(ended device)", err, account.ErrSessionEnded)
	mustCount(t, s, fx.acc.ID, t0, 0)
	mustCount(t, s, other.acc.ID, t0, 0)
}

// testLinkCodeRedeemed: a redeemed code's record stays, marked with the
// device that redeemed it, until the code would have expired, so that a
// new device whose answer was lost can retry (the flow checks the device).
// It never counts as live, never redeems again, and it names its device
// only while the code's lifetime lasts and its maker is active.
func testLinkCodeRedeemed(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	lc, live := newLink(fx, "a", t0), newLink(fx, "b", t0)
	mustCreateLink(t, s, lc, 2)
	mustCreateLink(t, s, live, 2)
	at := t0.Add(time.Minute)
	dev, sess := newDevice(t, "", at)
	if _, err := s.RedeemLinkCode(ctx, lc.Digest, at, dev, sess); err != nil {
		t.Fatalf("RedeemLinkCode: %v", err)
	}
	for _, now := range []time.Time{at, lc.Expires.Add(-time.Nanosecond)} {
		acc, by, err := s.RedeemedLinkCode(ctx, lc.Digest, now)
		if err != nil || by != dev.ID || !equalAccount(acc, fx.acc) {
			t.Fatalf("RedeemedLinkCode(at %v) = %s, %q, %v; want the account and %s", now.Sub(t0), acc.ID, by, err, dev.ID)
		}
	}
	// Not live: it does not count, makes room, and does not redeem again.
	mustCount(t, s, fx.acc.ID, at, 1)
	mustCreateLink(t, s, linkBy(fx.acc.ID, fx.dev.ID, "c", at), 2)
	dev2, sess2 := newDevice(t, "", at)
	_, err := s.RedeemLinkCode(ctx, lc.Digest, at, dev2, sess2)
	wantErr(t, "RedeemLinkCode(redeemed)", err, account.ErrNotFound)
	mustAbsent(t, s, "", dev2.ID)
	// One answer for everything else.
	for name, tc := range map[string]struct {
		d   []byte
		now time.Time
	}{
		"expired":   {lc.Digest, lc.Expires},
		"live code": {live.Digest, at},
		"unknown":   {digest("z"), at},
		"malformed": {[]byte("short"), at},
	} {
		_, by, err := s.RedeemedLinkCode(ctx, tc.d, tc.now)
		wantErr(t, "RedeemedLinkCode("+name+")", err, account.ErrNotFound)
		if by != "" {
			t.Fatalf("RedeemedLinkCode(%s) named %q", name, by)
		}
	}
	_, _, err = s.RedeemedLinkCode(ctx, lc.Digest, time.Time{})
	wantErr(t, "RedeemedLinkCode(zero time)", err, account.ErrInvalidRequest)
	if err := s.SetBanned(ctx, fx.acc.ID, true); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.RedeemedLinkCode(ctx, lc.Digest, at)
	wantErr(t, "RedeemedLinkCode(banned)", err, account.ErrBanned)
	if err := s.SetBanned(ctx, fx.acc.ID, false); err != nil {
		t.Fatal(err)
	}
	// The maker signed out: the code is void, redeemed or not.
	if err := s.EndSession(ctx, fx.dev.ID, at); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	_, _, err = s.RedeemedLinkCode(ctx, lc.Digest, at)
	wantErr(t, "RedeemedLinkCode(maker signed out)", err, account.ErrNotFound)
}

// testLinkCodeRedeemedGone: after an end-all or a deletion of the
// account, a redeemed code names no device.
func testLinkCodeRedeemedGone(t *testing.T, f Factory) {
	at := t0.Add(time.Minute)
	for name, end := range map[string]func(s account.Store, fx fixture) error{
		"EndAccountSessions": func(s account.Store, fx fixture) error {
			_, err := s.EndAccountSessions(ctxT(t), fx.acc.ID, at)
			return err
		},
		"DeleteAccount": func(s account.Store, fx fixture) error {
			return s.DeleteAccount(ctxT(t), fx.acc.ID, at, at.Add(hold))
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := f.New(t)
			fx := newFixture(t, "Alice")
			create(t, s, fx)
			lc := newLink(fx, "a", t0)
			mustCreateLink(t, s, lc, 2)
			dev, sess := newDevice(t, "", at)
			if _, err := s.RedeemLinkCode(ctxT(t), lc.Digest, at, dev, sess); err != nil {
				t.Fatalf("RedeemLinkCode: %v", err)
			}
			if err := end(s, fx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			_, by, err := s.RedeemedLinkCode(ctxT(t), lc.Digest, at)
			wantErr(t, "RedeemedLinkCode after "+name, err, account.ErrNotFound)
			if by != "" {
				t.Fatalf("RedeemedLinkCode after %s named %q", name, by)
			}
		})
	}
}
