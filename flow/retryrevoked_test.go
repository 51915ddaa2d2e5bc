package flow_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"testing"
	"time"

	"github.com/hallpass/hallpass/flow"
)

// TestRetryAfterFailedSignOut: a new device signed out (or its account
// ended) while the store step failed for good keeps, in the store, an
// active device whose session was never refreshed: exactly what a retry
// after a lost answer (signup, link, recovery) hands a fresh first pair.
// Only the revocation entry knows the device is out. A retry must ask it:
// before, the retry minted tokens issued after the entry, which the entry
// does not deny, so the device's key holder (a thief, the device the owner
// just signed out) was back in with a refresh token that kept working.
// Now the retry is refused with the flow's own answer and the session the
// step left live is ended.
func TestRetryAfterFailedSignOut(t *testing.T) {
	type joined struct {
		out   flow.Tokens
		retry func() (flow.Tokens, error)
	}
	joins := []struct {
		name string
		want error
		join func(t *testing.T, fx *fixture, k *ecdsa.PrivateKey) joined
	}{
		{"signup", flow.ErrUsernameTaken, func(t *testing.T, fx *fixture, k *ecdsa.PrivateKey) joined {
			out := fx.signup(t, k, "newcomer")
			return joined{out, func() (flow.Tokens, error) {
				return fx.flows.Signup(context.Background(), flow.SignupRequest{Username: "newcomer", DeviceName: "phone", Proof: fx.proof(t, k, "POST", base+"/v1/accounts")})
			}}
		}},
		{"link", flow.ErrInvalidLinkCode, func(t *testing.T, fx *fixture, k *ecdsa.PrivateKey) joined {
			maker := fx.signup(t, newKey(t), "keeper")
			lc, err := fx.flows.CreateLinkCode(context.Background(), maker.AccountID, maker.DeviceID)
			if err != nil {
				t.Fatal(err)
			}
			link := func() (flow.Tokens, error) {
				return fx.flows.Link(context.Background(), flow.LinkRequest{Code: lc.Code, DeviceName: "laptop", Proof: fx.proof(t, k, "POST", base+"/v1/link")})
			}
			out, err := link()
			if err != nil {
				t.Fatalf("link: %v", err)
			}
			return joined{out, link}
		}},
		{"recover", flow.ErrInvalidRecoveryCode, func(t *testing.T, fx *fixture, k *ecdsa.PrivateKey) joined {
			owner := fx.signup(t, newKey(t), "keeper")
			codes, err := fx.flows.CreateRecoveryCodes(context.Background(), owner.AccountID)
			if err != nil {
				t.Fatal(err)
			}
			recover := func() (flow.Tokens, error) {
				return fx.flows.Recover(context.Background(), flow.RecoverRequest{Username: "keeper", RecoveryCode: codes[0], DeviceName: "laptop", Proof: fx.proof(t, k, "POST", base+"/v1/recover")})
			}
			out, err := recover()
			if err != nil {
				t.Fatalf("recover: %v", err)
			}
			return joined{out, recover}
		}},
	}
	for _, j := range joins {
		for _, p := range signOutPaths[:4] { // a deletion leaves no device to retry
			t.Run(j.name+"/"+p.name, func(t *testing.T) {
				store := &flakyStep{Store: openBolt(t)}
				fx, _ := newMirroredFixture(t, store)
				k := newKey(t)
				jn := j.join(t, fx, k)
				fx.clock.Add(2 * time.Second)
				store.fail.Store(-1)
				if err := p.signOut(context.Background(), fx.flows, jn.out.AccountID, jn.out.DeviceID); !errors.Is(err, flow.ErrUnavailable) {
					t.Fatalf("sign-out with the store step down: %v, want ErrUnavailable", err)
				}
				store.fail.Store(0)
				fx.clock.Add(time.Minute) // inside every retry window
				if got, err := jn.retry(); !errors.Is(err, j.want) {
					t.Fatalf("retry after the sign-out: device %q, %v; want %v", got.DeviceID, err, j.want)
				}
				sess, err := store.GetSession(context.Background(), jn.out.DeviceID)
				if err != nil || sess.Ended.IsZero() {
					t.Fatalf("session after the refused retry: %+v, %v; want ended", sess, err)
				}
				if _, err := fx.refresh(t, k, jn.out.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
					t.Fatalf("refresh of the first pair: %v, want invalid_grant", err)
				}
			})
		}
	}
}
