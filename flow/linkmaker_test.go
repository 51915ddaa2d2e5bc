package flow_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hallpass/hallpass/flow"
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
