package flow_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/verifier"
)

// TestLinkCodeDeviceLimit: an account's active devices plus its live link
// codes stay within Config.MaxDevices. Nothing bounded them: every link
// code redeemed added a device, for ever. Past the limit CreateLinkCode
// answers ErrDeviceLimit (409 device_limit), whether the devices alone or
// devices and live codes reach it; a device signed out makes room again.
func TestLinkCodeDeviceLimit(t *testing.T) {
	fx := newFixture(t, nil, func(c *flow.Config) { c.MaxDevices = 3 })
	ctx := context.Background()
	k := newKey(t)
	a := fx.signup(t, k, "manydevices")
	link := func() (flow.Tokens, error) {
		t.Helper()
		lc, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID)
		if err != nil {
			return flow.Tokens{}, err
		}
		return fx.flows.Link(ctx, flow.LinkRequest{Code: lc.Code, DeviceName: "another", Proof: fx.proof(t, newKey(t), "POST", base+"/v1/link")})
	}
	b, err := link()
	if err != nil {
		t.Fatalf("second device: %v", err)
	}
	// Two devices and a live code: three, the limit.
	if _, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID); err != nil {
		t.Fatalf("third device's code: %v", err)
	}
	_, err = fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID)
	if !errors.Is(err, flow.ErrDeviceLimit) || flow.DetailOf(err) == "" {
		t.Fatalf("a code past the limit (devices and a live code): %v, want ErrDeviceLimit with a detail", err)
	}
	if _, err := fx.flows.CreateLinkCode(ctx, b.AccountID, b.DeviceID); !errors.Is(err, flow.ErrDeviceLimit) {
		t.Fatalf("from the other device: %v, want ErrDeviceLimit", err)
	}
	// Signing a device out makes room for one code.
	if err := fx.flows.RevokeDevice(ctx, b.DeviceID, "logout"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID); err != nil {
		t.Fatalf("after a sign-out: %v", err)
	}
	if _, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID); !errors.Is(err, flow.ErrDeviceLimit) {
		t.Fatalf("one device and two live codes: %v, want ErrDeviceLimit", err)
	}
}

// TestLinkCodeLimitBelowDeviceLimit: while the device limit leaves room,
// too many live codes is still rate_limited (use a code or wait), not
// device_limit.
func TestLinkCodeLimitBelowDeviceLimit(t *testing.T) {
	fx := newFixture(t, nil, func(c *flow.Config) { c.MaxDevices = 10; c.MaxLinkCodes = 2 })
	ctx := context.Background()
	a := fx.signup(t, newKey(t), "fewcodes")
	for range 2 {
		if _, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID); flow.Code(err) != "rate_limited" {
		t.Fatalf("third live code: %v, want rate_limited", err)
	}
}

// TestRecoverKeepingDevicesDeviceLimit: a recovery that keeps the other
// devices (SignOutOthers false) adds one, so it is held to MaxDevices too,
// before the recovery code is spent: the same code then works with
// SignOutOthers, which leaves one device.
func TestRecoverKeepingDevicesDeviceLimit(t *testing.T) {
	fx := newFixture(t, nil, func(c *flow.Config) { c.MaxDevices = 2 })
	ctx := context.Background()
	a := fx.signup(t, newKey(t), "fullhouse")
	codes, err := fx.flows.CreateRecoveryCodes(ctx, a.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID); err != nil {
		t.Fatal(err)
	}
	recover := func(signOut bool) (flow.Tokens, error) {
		return fx.flows.Recover(ctx, flow.RecoverRequest{Username: "fullhouse", RecoveryCode: codes[0], DeviceName: "new phone",
			SignOutOthers: signOut, Proof: fx.proof(t, newKey(t), "POST", base+"/v1/recover")})
	}
	if _, err := recover(false); !errors.Is(err, flow.ErrDeviceLimit) {
		t.Fatalf("recovery keeping a device and a live code at the limit: %v, want ErrDeviceLimit", err)
	}
	if _, err := recover(true); err != nil {
		t.Fatalf("the same code, signing the others out: %v", err)
	}
}

// TestSignOutRacingRecovery: a recovery minted the new device's first pair
// after its store step and after writing the entries of the devices it
// signed out (each up to the store timeout). The new device signed out in
// between, the mint past that entry's margin, got an access token every
// mirror accepted until it expired. The pair is now minted before the step.
func TestSignOutRacingRecovery(t *testing.T) {
	store := &stepHookStore{Store: openBolt(t)}
	fx := newMarginFixture(t, store)
	ctx := context.Background()
	a := fx.signup(t, newKey(t), "racedrecovery")
	codes, err := fx.flows.CreateRecoveryCodes(ctx, a.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	store.after = func(_, deviceID string) {
		if err := fx.flows.RevokeDevice(ctx, deviceID, "signed out at once"); err != nil {
			t.Errorf("sign-out of the new device: %v", err)
		}
		fx.clock.Add(fx.flows.SignOutMargin() + time.Second) // slow entry writes
	}
	got, err := fx.flows.Recover(ctx, flow.RecoverRequest{Username: "racedrecovery", RecoveryCode: codes[0], DeviceName: "new phone",
		SignOutOthers: true, Proof: fx.proof(t, newKey(t), "POST", base+"/v1/recover")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.v.Verify(ctx, got.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("access token of a recovered device signed out during the recovery: %v, want ErrRevoked", err)
	}
}

// TestLinkCodeOfDeletedAccount: a link code asked for by a device of an
// account deleted under the call is token_revoked, as the store's step
// answers it, not unavailable: the device count read first found no
// account and answered 503, which a client retries.
func TestLinkCodeOfDeletedAccount(t *testing.T) {
	fx := newFixture(t, nil)
	ctx := context.Background()
	a := fx.signup(t, newKey(t), "goneaccount")
	if err := fx.flows.DeleteAccount(ctx, a.AccountID, "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.flows.CreateLinkCode(ctx, a.AccountID, a.DeviceID); !errors.Is(err, flow.ErrTokenRevoked) {
		t.Fatalf("link code of a deleted account: %v, want ErrTokenRevoked", err)
	}
}
