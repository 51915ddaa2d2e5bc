package flow_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/verifier"
)

// TestLinkCodeOfSignedOutMaker: a device signed out while the store step
// failed for good stays active in the store; only its device entry says
// it is out. A link code it made before (a thief's code on a stolen phone
// the owner signed out) still redeemed once the store was back, and added
// the thief's device to the account. The maker's entries are now asked
// first: the code is refused and the maker's session ended.
func TestLinkCodeOfSignedOutMaker(t *testing.T) {
	store := &flakyStep{Store: openBolt(t)}
	fx, _ := newMirroredFixture(t, store)
	ctx := context.Background()
	maker := fx.signup(t, newKey(t), "stolenphone")
	lc, err := fx.flows.CreateLinkCode(ctx, maker.AccountID, maker.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	store.fail.Store(-1) // the store step never answers
	if err := fx.flows.RevokeDevice(ctx, maker.DeviceID, "lost phone"); !errors.Is(err, flow.ErrUnavailable) {
		t.Fatalf("sign-out whose step failed: %v, want unavailable", err)
	}
	store.fail.Store(0) // the store is back
	_, err = fx.flows.Link(ctx, flow.LinkRequest{Code: lc.Code, DeviceName: "thief", Proof: fx.proof(t, newKey(t), "POST", base+"/v1/link")})
	if !errors.Is(err, flow.ErrInvalidLinkCode) {
		t.Fatalf("the signed-out maker's code: %v, want ErrInvalidLinkCode", err)
	}
	devs, err := fx.flows.Devices(ctx, maker.AccountID)
	if err != nil || len(devs) != 1 || devs[0].Active() {
		t.Fatalf("devices after the refused code: %+v, %v; want the maker only, ended", devs, err)
	}
	sess, err := store.GetSession(ctx, maker.DeviceID)
	if err != nil || sess.Ended.IsZero() {
		t.Fatalf("maker's session: %+v, %v; want ended", sess, err)
	}
}

// stepHookStore runs after (once) right after the store step that makes
// a new device (RedeemLinkCode, UseRecoveryCode) succeeded, with the
// account and the new device, before the flow goes on.
type stepHookStore struct {
	account.Store
	after func(accountID, deviceID string)
}

func (s *stepHookStore) fire(accountID, deviceID string) {
	if f := s.after; f != nil {
		s.after = nil
		f(accountID, deviceID)
	}
}

func (s *stepHookStore) RedeemLinkCode(ctx context.Context, digest []byte, now time.Time, dev account.Device, sess account.Session) (account.Account, error) {
	acc, err := s.Store.RedeemLinkCode(ctx, digest, now, dev, sess)
	if err == nil {
		s.fire(acc.ID, dev.ID)
	}
	return acc, err
}

func (s *stepHookStore) UseRecoveryCode(ctx context.Context, accountID string, digest []byte, dev account.Device, sess account.Session, signOutOthers bool, now time.Time) ([]string, error) {
	ended, err := s.Store.UseRecoveryCode(ctx, accountID, digest, dev, sess, signOutOthers, now)
	if err == nil {
		s.fire(accountID, dev.ID)
	}
	return ended, err
}

// TestBanRacingLink: a link minted the new device's first pair after its
// store step, so a ban (an account entry, which has no margin) stored
// between the step and the mint left an access token newer than the
// entry, accepted by every mirror until it expired. The pair is now
// minted before the step, for the account the store reports for the code.
func TestBanRacingLink(t *testing.T) {
	store := &stepHookStore{Store: openBolt(t)}
	fx := newMarginFixture(t, store)
	ctx := context.Background()
	owner := fx.signup(t, newKey(t), "bannedsoon")
	lc, err := fx.flows.CreateLinkCode(ctx, owner.AccountID, owner.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	store.after = func(accountID, _ string) {
		fx.clock.Add(time.Millisecond) // the ban comes after the step
		if err := fx.flows.EndAccount(ctx, accountID, "ban"); err != nil {
			t.Errorf("ban: %v", err)
		}
		fx.clock.Add(time.Second) // the node mints a second later
	}
	got, err := fx.flows.Link(ctx, flow.LinkRequest{Code: lc.Code, DeviceName: "laptop", Proof: fx.proof(t, newKey(t), "POST", base+"/v1/link")})
	if err != nil {
		t.Fatal(err)
	}
	if got.AccountID != owner.AccountID || got.Username != "bannedsoon" || got.DeviceID == "" {
		t.Fatalf("link answered %+v", got)
	}
	if _, err := fx.v.Verify(ctx, got.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("access token of a link racing a ban: %v, want ErrRevoked", err)
	}
}
