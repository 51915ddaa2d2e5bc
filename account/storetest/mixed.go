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
	m := newMixed(t, f.New(t))
	for i := range 8 {
		m.addSucceeding(t, i)
	}
	for i := range 4 {
		m.addFailing(t, i)
	}
	m.run()
	m.checkOutcomes(t)
	m.checkStored(t)
}

// mixedCall is one call of testConcurrentMixed and what it must answer.
type mixedCall struct {
	what string
	run  func() error
	want error // nil: must succeed; errOne: exactly one of the group succeeds
}

var errOne = errors.New("exactly one of the group")

// mixed is the state of one testConcurrentMixed run.
type mixed struct {
	s         account.Store
	ctx       context.Context
	cancelled context.Context
	alice     fixture
	lc        account.LinkCode
	now       time.Time
	calls     []mixedCall
	errs      []error
	signups   []fixture // must be stored
	absent    []fixture // must not be
	joined    map[string]account.Device
}

func newMixed(t *testing.T, s account.Store) *mixed {
	m := &mixed{s: s, ctx: ctxT(t), alice: newFixture(t, "Alice"), now: t0.Add(time.Minute), joined: map[string]account.Device{}}
	create(t, s, m.alice)
	m.lc = newLink(m.alice, "l1", t0)
	mustCreateLink(t, s, m.lc, 3)
	mustSetRecovery(t, s, &m.alice, salt1, digests("r1"))
	cancelled, cancel := context.WithCancel(m.ctx)
	cancel()
	m.cancelled = cancelled
	return m
}

// addSucceeding adds a signup that must succeed, one with a taken name,
// a redemption and a recovery of which one of each group wins, and a
// refresh that advances or gets the grace answer.
func (m *mixed) addSucceeding(t *testing.T, i int) {
	s, ctx, now := m.s, m.ctx, m.now
	fx := newFixture(t, fmt.Sprintf("Mixed%02d", i))
	m.signups = append(m.signups, fx)
	m.calls = append(m.calls, mixedCall{"signup", func() error { return s.CreateAccount(ctx, fx.acc, fx.dev, fx.sess) }, nil})

	taken := newFixture(t, "ALICE")
	m.absent = append(m.absent, taken)
	m.calls = append(m.calls, mixedCall{"signup with a taken name", func() error {
		return s.CreateAccount(ctx, taken.acc, taken.dev, taken.sess)
	}, account.ErrUsernameTaken})

	redeemDev, redeemSess := newDevice(t, "", now)
	m.joined["redeem"+redeemDev.ID] = redeemDev
	m.calls = append(m.calls, mixedCall{"redeem", func() error {
		_, err := s.RedeemLinkCode(ctx, m.lc.Digest, now, redeemDev, redeemSess)
		return err
	}, errOne})

	recDev, recSess := newDevice(t, "", now)
	m.joined["recover"+recDev.ID] = recDev
	m.calls = append(m.calls, mixedCall{"recover", func() error {
		_, err := s.UseRecoveryCode(ctx, m.alice.acc.ID, digest("r1"), recDev, recSess, false, now)
		return err
	}, errOne})
	m.calls = append(m.calls, mixedCall{"refresh", m.refresh, nil})
}

func (m *mixed) refresh() error {
	res, err := m.s.Refresh(m.ctx, req(m.alice.dev.ID, 1, m.now, "s2"))
	switch {
	case err != nil:
		return err
	case res.Outcome != account.RefreshAdvanced && res.Outcome != account.RefreshGrace:
		return fmt.Errorf("outcome %v, want advanced or grace", res.Outcome)
	case string(res.Successor) != "s2":
		return fmt.Errorf("successor %q", res.Successor)
	}
	return nil
}

// addFailing adds calls that must each fail alone.
func (m *mixed) addFailing(t *testing.T, i int) {
	s, ctx, now := m.s, m.ctx, m.now
	dupDev := newFixture(t, fmt.Sprintf("Dup%02d", i))
	dupDev.dev.ID, dupDev.sess.DeviceID = m.alice.dev.ID, m.alice.dev.ID
	m.absent = append(m.absent, dupDev)
	m.calls = append(m.calls, mixedCall{"signup with a device id in use", func() error {
		return s.CreateAccount(ctx, dupDev.acc, dupDev.dev, dupDev.sess)
	}, account.ErrExists})

	late := newFixture(t, fmt.Sprintf("Late%02d", i))
	m.absent = append(m.absent, late)
	m.calls = append(m.calls, mixedCall{"signup with a cancelled context", func() error {
		return s.CreateAccount(m.cancelled, late.acc, late.dev, late.sess)
	}, context.Canceled})

	orphan, orphanSess := newDevice(t, newID(t, account.AccountPrefix), now)
	m.calls = append(m.calls, mixedCall{"add device to a missing account", func() error {
		return s.AddDevice(ctx, orphan, orphanSess)
	}, account.ErrNotFound})

	wrongDev, wrongSess := newDevice(t, "", now)
	m.calls = append(m.calls, mixedCall{"redeem an unknown code", func() error {
		_, err := s.RedeemLinkCode(ctx, digest("nope"), now, wrongDev, wrongSess)
		return err
	}, account.ErrNotFound})

	unknown := newID(t, account.DevicePrefix)
	m.calls = append(m.calls, mixedCall{"end an unknown session", func() error {
		return s.EndSession(ctx, unknown, now)
	}, account.ErrNotFound})
}

// run starts every call at once and waits for them.
func (m *mixed) run() {
	m.errs = make([]error, len(m.calls))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range m.calls {
		wg.Go(func() {
			<-start
			m.errs[i] = c.run()
		})
	}
	close(start)
	wg.Wait()
}

// checkOutcomes checks each call's answer, and one winner per group.
func (m *mixed) checkOutcomes(t *testing.T) {
	won := map[string]int{}
	for i, c := range m.calls {
		err := m.errs[i]
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
}

// checkStored checks that every success is stored as if it ran alone and
// no failure left a trace.
func (m *mixed) checkStored(t *testing.T) {
	s, ctx, now, alice := m.s, m.ctx, m.now, m.alice
	for _, fx := range m.signups {
		mustState(t, s, fx)
		mustByName(t, s, fx.acc.UsernameKey, fx.acc.ID)
	}
	for _, fx := range m.absent {
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
		_, redeemed := m.joined["redeem"+d.ID]
		_, recovered := m.joined["recover"+d.ID]
		if d.ID != alice.dev.ID && !redeemed && !recovered {
			t.Fatalf("device %s joined alice's account from nowhere", d.ID)
		}
	}
}
