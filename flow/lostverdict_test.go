package flow_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/verifier"
)

// lostRefreshReply runs the real Refresh and, when lose is set, answers as
// a store whose reply never came back: the step committed, the caller saw
// the store fail.
type lostRefreshReply struct {
	account.Store
	lose atomic.Bool
}

func (s *lostRefreshReply) Refresh(ctx context.Context, req account.RefreshRequest) (account.RefreshResult, error) {
	res, err := s.Store.Refresh(ctx, req)
	if s.lose.Swap(false) {
		return account.RefreshResult{}, errStepDown
	}
	return res, err
}

// TestLostReuseVerdictSealed: a refresh-token reuse whose store step
// committed (the session ended) but whose answer was lost got 503, and no
// device entry was written. Its retry met the ended session and answered
// invalid_grant, still without an entry: the access token the session had
// been given stayed valid at every verifier until it expired. A refresh
// that meets a session ended moments ago with no entry denying its tokens
// now writes one; a second attempt finds it and writes nothing more.
func TestLostReuseVerdictSealed(t *testing.T) {
	store := &lostRefreshReply{Store: openBolt(t)}
	mf := newMarginFixture(t, store)
	fx, v, written := mf.fixture, mf.v, &mf.written

	k := newKey(t)
	out := fx.signup(t, k, "victim")
	fx.clock.Add(time.Second)
	next, err := fx.refresh(t, k, out.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	fx.clock.Add(time.Minute) // past the grace window: presenting out's token again is reuse
	store.lose.Store(true)
	if _, err := fx.refresh(t, k, out.RefreshToken); !errors.Is(err, flow.ErrUnavailable) {
		t.Fatalf("reuse whose answer was lost: %v, want unavailable", err)
	}
	if _, err := v.Verify(context.Background(), next.AccessToken); err != nil {
		t.Fatalf("before the retry the session's access token is %v (the lost verdict wrote no entry)", err)
	}
	for i := range 2 {
		if _, err := fx.refresh(t, k, out.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
			t.Fatalf("retry %d: %v, want invalid_grant", i, err)
		}
		if _, err := v.Verify(context.Background(), next.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
			t.Fatalf("retry %d: the ended session's access token is %v, want ErrRevoked", i, err)
		}
	}
	if n := written.Load(); n != 1 {
		t.Fatalf("%d entries written, want 1", n)
	}
	// A device signed out the usual way has its entry: a refresh after
	// it writes nothing more.
	k2 := newKey(t)
	other := fx.signup(t, k2, "bystander")
	if err := fx.flows.RevokeDevice(context.Background(), other.DeviceID, "logout"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.refresh(t, k2, other.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
		t.Fatalf("refresh after logout: %v", err)
	}
	if n := written.Load(); n != 2 {
		t.Fatalf("%d entries written, want 2 (the lost verdict's, the logout's)", n)
	}
}
