package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

// testConcurrentMixed starts many writes at once, about half of which must
// fail (a name taken, a device id in use, a cancelled context, a missing
// account, a code used by a concurrent call), so that an engine that
// groups concurrent writes into one commit gets failures inside its
// batches: each failure must fail alone and change nothing, and every
// success must be stored as if it had run alone.
func testConcurrentMixed(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	alice := newFixture(t, "Alice")
	create(t, s, alice)
	lc := newLink(alice.acc.ID, "l1", t0)
	mustCreateLink(t, s, lc, 3)
	mustSetRecovery(t, s, &alice, salt1, digests("r1"))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	now := t0.Add(time.Minute)

	type call struct {
		what string
		run  func() error
		want error // nil: must succeed; errOne: exactly one of the group succeeds
	}
	errOne := errors.New("exactly one of the group")
	var (
		calls   []call
		signups []fixture // must be stored
		absent  []fixture // must not be
		joined  = map[string]account.Device{}
	)
	for i := range 8 {
		fx := newFixture(t, fmt.Sprintf("Mixed%02d", i))
		signups = append(signups, fx)
		calls = append(calls, call{"signup", func() error { return s.CreateAccount(ctx, fx.acc, fx.dev, fx.sess) }, nil})

		taken := newFixture(t, "ALICE")
		absent = append(absent, taken)
		calls = append(calls, call{"signup with a taken name", func() error {
			return s.CreateAccount(ctx, taken.acc, taken.dev, taken.sess)
		}, account.ErrUsernameTaken})

		redeemDev, redeemSess := newDevice(t, "", now)
		joined["redeem"+redeemDev.ID] = redeemDev
		calls = append(calls, call{"redeem", func() error {
			_, err := s.RedeemLinkCode(ctx, lc.Digest, now, redeemDev, redeemSess)
			return err
		}, errOne})

		recDev, recSess := newDevice(t, "", now)
		joined["recover"+recDev.ID] = recDev
		calls = append(calls, call{"recover", func() error {
			_, err := s.UseRecoveryCode(ctx, alice.acc.ID, digest("r1"), recDev, recSess, false, now)
			return err
		}, errOne})

		calls = append(calls, call{"refresh", func() error {
			res, err := s.Refresh(ctx, req(alice.dev.ID, 1, now, "s2"))
			switch {
			case err != nil:
				return err
			case res.Outcome != account.RefreshAdvanced && res.Outcome != account.RefreshGrace:
				return fmt.Errorf("outcome %v, want advanced or grace", res.Outcome)
			case string(res.Successor) != "s2":
				return fmt.Errorf("successor %q", res.Successor)
			}
			return nil
		}, nil})
	}
	for i := range 4 {
		dupDev := newFixture(t, fmt.Sprintf("Dup%02d", i))
		dupDev.dev.ID, dupDev.sess.DeviceID = alice.dev.ID, alice.dev.ID
		absent = append(absent, dupDev)
		calls = append(calls, call{"signup with a device id in use", func() error {
			return s.CreateAccount(ctx, dupDev.acc, dupDev.dev, dupDev.sess)
		}, account.ErrExists})

		late := newFixture(t, fmt.Sprintf("Late%02d", i))
		absent = append(absent, late)
		calls = append(calls, call{"signup with a cancelled context", func() error {
			return s.CreateAccount(cancelled, late.acc, late.dev, late.sess)
		}, context.Canceled})

		orphan, orphanSess := newDevice(t, newID(t, account.AccountPrefix), now)
		calls = append(calls, call{"add device to a missing account", func() error {
			return s.AddDevice(ctx, orphan, orphanSess)
		}, account.ErrNotFound})

		wrongDev, wrongSess := newDevice(t, "", now)
		calls = append(calls, call{"redeem an unknown code", func() error {
			_, err := s.RedeemLinkCode(ctx, digest("nope"), now, wrongDev, wrongSess)
			return err
		}, account.ErrNotFound})

		calls = append(calls, call{"end an unknown session", func() error {
			return s.EndSession(ctx, newID(t, account.DevicePrefix), now)
		}, account.ErrNotFound})
	}

	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range calls {
		wg.Go(func() {
			<-start
			errs[i] = c.run()
		})
	}
	close(start)
	wg.Wait()

	won := map[string]int{}
	for i, c := range calls {
		err := errs[i]
		switch {
		case c.want == errOne:
			if err == nil {
				won[c.what]++
			} else if !errors.Is(err, account.ErrNotFound) {
				t.Errorf("%s: %v, want nil or ErrNotFound", c.what, err)
			}
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.what, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.what, err, c.want)
		}
	}
	for _, what := range []string{"redeem", "recover"} {
		if won[what] != 1 {
			t.Errorf("%s: %d concurrent calls succeeded, want exactly 1", what, won[what])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, fx := range signups {
		mustState(t, s, fx)
		mustByName(t, s, fx.acc.UsernameKey, fx.acc.ID)
	}
	for _, fx := range absent {
		_, err := s.GetAccount(ctx, fx.acc.ID)
		wantErr(t, "GetAccount of a failed signup", err, account.ErrNotFound)
		if fx.dev.ID != alice.dev.ID {
			_, err = s.GetDevice(ctx, fx.dev.ID)
			wantErr(t, "GetDevice of a failed signup", err, account.ErrNotFound)
		}
	}
	mustByName(t, s, "alice", alice.acc.ID)
	alice.sess.Counter, alice.sess.Successor, alice.sess.GraceUntil, alice.sess.LastUsed = 2, []byte("s2"), now.Add(grace), now
	alice.dev.LastUsed = now
	alice.acc.RecoveryCodes = nil
	mustState(t, s, alice)
	mustCount(t, s, alice.acc.ID, now, 0)
	devs, err := s.ListDevices(ctx, alice.acc.ID)
	if err != nil || len(devs) != 3 {
		t.Fatalf("ListDevices = %d devices, %v; want alice's first, the redeemer and the recoverer", len(devs), err)
	}
	for _, d := range devs {
		if d.ID == alice.dev.ID {
			continue
		}
		if _, ok := joined["redeem"+d.ID]; !ok {
			if _, ok := joined["recover"+d.ID]; !ok {
				t.Fatalf("device %s joined alice's account from nowhere", d.ID)
			}
		}
	}
}
