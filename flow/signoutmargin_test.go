package flow_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/verifier"
)

// stallStore is a raceStore whose refresh step, once armed, runs stall
// after the store answered and before the flow goes on: a node that
// stalls (a GC pause, a starved CPU) between its store step and its
// answer.
type stallStore struct {
	*raceStore
	stall func()
}

func (s *stallStore) Refresh(ctx context.Context, req account.RefreshRequest) (account.RefreshResult, error) {
	res, err := s.raceStore.Refresh(ctx, req)
	if f := s.stall; f != nil {
		s.stall = nil
		f()
	}
	return res, err
}

// marginFixture is the issuer's flows over store with a revocation store,
// the issuer's own mirror (Observe, and Sessions through hookedSessions)
// and a verifier on that mirror, as in TestSignOutRacingRefresh.
type marginFixture struct {
	*fixture
	sessions *hookedSessions
	v        *verifier.Verifier
	written  atomic.Int32 // entries written (Observe)
}

func newMarginFixture(t *testing.T, store account.Store) *marginFixture {
	t.Helper()
	rs := openRevocations(t)
	mf := &marginFixture{sessions: &hookedSessions{}}
	var mirror *revocation.Mirror
	mf.fixture = newFixture(t, store, func(c *flow.Config) {
		var err error
		if mirror, err = revocation.NewMirror(rs, revocation.MirrorOptions{Now: c.Now, MaxStaleness: time.Hour}); err != nil {
			t.Fatal(err)
		}
		mf.sessions.Mirror = mirror
		c.Revocations, c.Sessions = rs, mf.sessions
		c.Observe = func(e revocation.Entry) { mf.written.Add(1); mirror.Observe(e) }
	})
	mirror.Start()
	t.Cleanup(func() { mirror.Close() })
	<-mirror.Synced()
	v, err := verifier.New(staticKeys(t, mf.fixture), base, base, verifier.WithClock(mf.clock.Now), verifier.WithRevocation(mirror))
	if err != nil {
		t.Fatal(err)
	}
	mf.v = v
	return mf
}

// TestSignOutRacingRetriedRefresh: a refresh retried after the grace
// window (RefreshRetried) racing a device sign-out. A device entry's
// Before lies SignOutMargin past its making and is not written again when
// the sign-out's store step ends within it (sealIfLate), which holds only
// if every refresh answers with an access token minted before its store
// step. The retried refresh minted its access token after the step: a
// node stalling between the two past the margin answered a token issued
// after Before, valid at every mirror for its whole lifetime although the
// device was signed out.
func TestSignOutRacingRetriedRefresh(t *testing.T) {
	race := &raceStore{Store: openBolt(t)}
	store := &stallStore{raceStore: race}
	fx := newMarginFixture(t, store)
	race.advance = fx.clock.Add

	k := newKey(t)
	out := fx.signup(t, k, "staller")
	const retryID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	retry := func() (flow.Tokens, error) {
		return fx.flows.Refresh(context.Background(), flow.RefreshRequest{RefreshToken: out.RefreshToken, RetryID: retryID,
			Proof: fx.proof(t, k, "POST", base+"/v1/token")})
	}
	if _, err := retry(); err != nil { // the advance, whose answer is lost
		t.Fatal(err)
	}
	fx.clock.Add(time.Minute) // past the grace window

	done := make(chan error, 1)
	fx.sessions.hook = func() {
		// The sign-out's entry is written; its store step waits for the
		// refresh's.
		race.arm()
		go func() { done <- fx.flows.RevokeDevice(context.Background(), out.DeviceID, "logout") }()
		waitDenied(t, fx.v, out.AccessToken)
		fx.clock.Add(time.Second)
	}
	signOutErr := errors.New("the sign-out did not end")
	store.stall = func() {
		// The sign-out ends within the margin (no second entry), then
		// this node stalls past its Before before answering.
		signOutErr = <-done
		fx.clock.Add(fx.flows.SignOutMargin() + time.Second)
	}
	got, err := retry()
	if err != nil {
		t.Fatalf("retried refresh racing the sign-out: %v", err)
	}
	if signOutErr != nil {
		t.Fatalf("sign-out: %v", signOutErr)
	}
	if _, err := fx.v.Verify(context.Background(), got.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("access token of a retried refresh racing the sign-out: %v, want ErrRevoked", err)
	}
}

// TestSignOutRacingSignupRetry: a signup retried after a lost answer
// (retryPair) asks the mirror with the session's start and mints; its
// access token's iat is the time of the mint. A sign-out of the device
// between the check and a mint a second later left only entries made
// before the mint, so the token was accepted at every mirror: a device
// entry's Before, SignOutMargin past its making (7747a9a), denies it; an
// account entry (a ban, an admin entry) did not, until the pair was
// minted before the check: an entry the check does not see is then made
// after the mint.
func TestSignOutRacingSignupRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signOut func(f *flow.Flows, acc, dev string) error
	}{
		{"logout", func(f *flow.Flows, _, dev string) error { return f.RevokeDevice(context.Background(), dev, "logout") }},
		{"sessions of a ban", func(f *flow.Flows, acc, _ string) error { return f.EndAccount(context.Background(), acc, "ban") }},
		{"account entry", func(f *flow.Flows, acc, _ string) error {
			_, err := f.Revoke(context.Background(), revocation.KindAccount, acc, "admin")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newMarginFixture(t, nil)
			k := newKey(t)
			out := fx.signup(t, k, "retrier")
			fx.clock.Add(time.Second)
			fx.sessions.hook = func() {
				// The retry's check passed; the device is signed out,
				// and the retry goes on a second later.
				fx.clock.Add(time.Millisecond)
				if err := tc.signOut(fx.flows, out.AccountID, out.DeviceID); err != nil {
					t.Errorf("sign-out: %v", err)
				}
				fx.clock.Add(time.Second)
			}
			got := fx.signup(t, k, "retrier")
			if got.DeviceID != out.DeviceID {
				t.Fatalf("signup retry answered device %s, want %s", got.DeviceID, out.DeviceID)
			}
			if _, err := fx.v.Verify(context.Background(), got.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
				t.Fatalf("access token of a signup retry racing the sign-out: %v, want ErrRevoked", err)
			}
			if _, err := fx.refresh(t, k, got.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
				t.Fatalf("refresh token of a signup retry racing the sign-out: %v, want invalid_grant", err)
			}
		})
	}
}
