package flow_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

const base = "http://127.0.0.1:8080"

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	flows *flow.Flows
	store account.Store
	clock *fakeClock
	ring  *keys.Ring
}

// newFixture builds flows over store (a fresh bbolt store when nil); opts
// change the configuration before the flows are built.
func newFixture(t *testing.T, store account.Store, opts ...func(*flow.Config)) *fixture {
	t.Helper()
	clk := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	if store == nil {
		st, err := boltstore.Open(filepath.Join(t.TempDir(), "hallpass.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		store = st
	}
	ring, err := keys.NewRing(nil, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	lk, err := keys.GenerateLocalKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := refresh.NewCodec(clk.Now, lk)
	if err != nil {
		t.Fatal(err)
	}
	minter, err := token.NewMinter(token.Config{Issuer: base, Audience: base, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	replay, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	policy := account.DefaultUsernamePolicy()
	cfg := flow.Config{
		PublicURL: base, Store: store, Keys: ring, Refresh: codec, Minter: minter, Usernames: &policy,
		MaxDeviceName: 64, RefreshTTL: 90 * 24 * time.Hour, RefreshIdle: 30 * 24 * time.Hour, RefreshGrace: 30 * time.Second,
		EntryTTL: 11 * time.Minute, DPoP: dpop.Options{Replay: replay}, StoreTimeout: 5 * time.Second, Now: clk.Now,
		Pepper: flow.StaticPepper{[]byte("test pepper, 32 bytes or so....")}, LinkCodeTTL: 10 * time.Minute, MaxLinkCodes: 3, MaxDevices: 20, UsernameHold: 24 * time.Hour,
	}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := flow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{flows: f, store: store, clock: clk, ring: ring}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (fx *fixture) proof(t *testing.T, k *ecdsa.PrivateKey, method, url string) flow.Proof {
	t.Helper()
	p, err := dpop.NewProofWithOptions(k, method, url, "", "", dpop.ProofOptions{Now: fx.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return flow.Proof{JWS: p, Method: method, URL: url}
}

func (fx *fixture) signup(t *testing.T, k *ecdsa.PrivateKey, name string) flow.Tokens {
	t.Helper()
	out, err := fx.flows.Signup(context.Background(), flow.SignupRequest{Username: name, DeviceName: "phone", Proof: fx.proof(t, k, "POST", base+"/v1/accounts")})
	if err != nil {
		t.Fatalf("signup: %v", err)
	}
	return out
}

func (fx *fixture) refresh(t *testing.T, k *ecdsa.PrivateKey, rt string) (flow.Tokens, error) {
	t.Helper()
	return fx.flows.Refresh(context.Background(), flow.RefreshRequest{RefreshToken: rt, Proof: fx.proof(t, k, "POST", base+"/v1/token")})
}

func TestSignupRefusals(t *testing.T) {
	fx := newFixture(t, nil)
	k := newKey(t)
	fx.signup(t, k, "alice159")
	tests := []struct {
		name       string
		req        flow.SignupRequest
		want       error
		wantDetail string
	}{
		{name: "name taken", req: flow.SignupRequest{Username: "Alice159", Proof: fx.proof(t, newKey(t), "POST", base+"/v1/accounts")}, want: flow.ErrUsernameTaken},
		{name: "name invalid", req: flow.SignupRequest{Username: "a b", Proof: fx.proof(t, newKey(t), "POST", base+"/v1/accounts")}, want: flow.ErrUsernameInvalid},
		{name: "device name with a line break", req: flow.SignupRequest{Username: "bob", DeviceName: "a\nb", Proof: fx.proof(t, newKey(t), "POST", base+"/v1/accounts")}, want: flow.ErrInvalidRequest},
		{name: "no proof", req: flow.SignupRequest{Username: "bob", Proof: flow.Proof{Method: "POST", URL: base + "/v1/accounts"}}, want: flow.ErrInvalidProof},
		{name: "proof for another host names the public URL", req: flow.SignupRequest{Username: "bob", Proof: func() flow.Proof {
			p := fx.proof(t, newKey(t), "POST", "http://localhost:8080/v1/accounts")
			p.URL = base + "/v1/accounts"
			return p
		}()}, want: flow.ErrInvalidProof, wantDetail: "public URL is " + base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fx.flows.Signup(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(flow.DetailOf(err), tt.wantDetail) {
				t.Fatalf("detail %q does not contain %q", flow.DetailOf(err), tt.wantDetail)
			}
		})
	}
}

func TestRefreshRotation(t *testing.T) {
	fx := newFixture(t, nil)
	k := newKey(t)
	first := fx.signup(t, k, "carol")

	// A thief with another key is refused and the session is untouched.
	if _, err := fx.refresh(t, newKey(t), first.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
		t.Fatalf("other key: %v", err)
	}
	second, err := fx.refresh(t, k, first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	// A retry within the grace window gets the same pair.
	again, err := fx.refresh(t, k, first.RefreshToken)
	if err != nil || again.RefreshToken != second.RefreshToken || again.AccessToken != second.AccessToken {
		t.Fatalf("grace retry: %v, same pair %v", err, again.RefreshToken == second.RefreshToken)
	}
	// After the grace window the old token is a reuse: the session ends.
	fx.clock.Add(time.Minute)
	if _, err := fx.refresh(t, k, first.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := fx.refresh(t, k, second.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
		t.Fatalf("after reuse the session must be over: %v", err)
	}
	if _, err := fx.refresh(t, k, "v4.local.garbage"); !errors.Is(err, flow.ErrInvalidGrant) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestRevokeDeviceAndStateCheck(t *testing.T) {
	fx := newFixture(t, nil)
	k := newKey(t)
	out := fx.signup(t, k, "dave")
	claims := &token.Claims{Subject: out.AccountID, Device: out.DeviceID}
	dev, err := fx.flows.Device(context.Background(), out.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	claims.Confirmation.JKT = dev.JKT
	ctx, who := flow.WithCaller(context.Background())
	if err := fx.flows.StateCheck().CheckRevoked(ctx, "", claims); err != nil {
		t.Fatalf("state check of an active device: %v", err)
	}
	if who.Account.Username != "dave" || who.Device.ID != out.DeviceID {
		t.Fatalf("caller not filled: %+v", who)
	}
	if err := fx.flows.RevokeDevice(context.Background(), out.DeviceID, "logout"); err != nil {
		t.Fatal(err)
	}
	if err := fx.flows.StateCheck().CheckRevoked(context.Background(), "", claims); err == nil || errors.Is(err, verifier.ErrRevocationUnavailable) {
		t.Fatalf("state check of a revoked device: %v", err)
	}
	if _, err := fx.refresh(t, k, out.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
		t.Fatalf("refresh after sign-out: %v", err)
	}
}

// downStore answers every call with an error, as a store that is down.
type downStore struct{ account.Store }

func (downStore) GetCaller(context.Context, string, string) (account.Account, account.Device, error) {
	return account.Account{}, account.Device{}, errors.New("connection refused")
}

func (downStore) GetAccount(context.Context, string) (account.Account, error) {
	return account.Account{}, errors.New("connection refused")
}

func TestStateCheckStoreDown(t *testing.T) {
	fx := newFixture(t, downStore{})
	err := fx.flows.StateCheck().CheckRevoked(context.Background(), "", &token.Claims{Subject: "acc_x", Device: "dev_x"})
	if !errors.Is(err, verifier.ErrRevocationUnavailable) {
		t.Fatalf("err = %v, want ErrRevocationUnavailable", err)
	}
}

// TestAccountCheck: the lighter check reads only the account: it fills
// the caller with the account and the device as the token names it, and
// refuses a banned or deleted account; it does not look at the device (a
// device signed out is the mirror's to refuse); a store that does not
// answer makes it unavailable.
func TestAccountCheck(t *testing.T) {
	fx := newFixture(t, nil)
	ctx := context.Background()
	claimsOf := func(name string) *token.Claims {
		out := fx.signup(t, newKey(t), name)
		return &token.Claims{Subject: out.AccountID, Device: out.DeviceID, Confirmation: token.Confirmation{JKT: "jkt-of-the-token"}}
	}
	active, banned, deleted, signedOut := claimsOf("erin"), claimsOf("frank"), claimsOf("grace"), claimsOf("heidi")
	if err := fx.store.SetBanned(ctx, banned.Subject, true); err != nil {
		t.Fatal(err)
	}
	if err := fx.flows.DeleteAccount(ctx, deleted.Subject, "test"); err != nil {
		t.Fatal(err)
	}
	if err := fx.flows.RevokeDevice(ctx, signedOut.Device, "test"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		claims  *token.Claims
		refused bool
	}{
		{"active", active, false},
		{"device signed out (the mirror refuses it)", signedOut, false},
		{"banned", banned, true},
		{"deleted", deleted, true},
	} {
		cctx, who := flow.WithCaller(ctx)
		err := fx.flows.AccountCheck().CheckRevoked(cctx, "", tc.claims)
		if tc.refused {
			if err == nil || errors.Is(err, verifier.ErrRevocationUnavailable) || who.Account.ID != "" {
				t.Errorf("%s: err %v, caller %+v; want refused, caller empty", tc.name, err, who)
			}
			continue
		}
		if err != nil || who.Account.ID != tc.claims.Subject || who.Device.ID != tc.claims.Device ||
			who.Device.AccountID != tc.claims.Subject || who.Device.JKT != tc.claims.Confirmation.JKT {
			t.Errorf("%s: err %v, caller %+v", tc.name, err, who)
		}
	}
	down := newFixture(t, downStore{})
	err := down.flows.AccountCheck().CheckRevoked(ctx, "", &token.Claims{Subject: "acc_x", Device: "dev_x"})
	if !errors.Is(err, verifier.ErrRevocationUnavailable) {
		t.Fatalf("store down: err = %v, want ErrRevocationUnavailable", err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := flow.New(flow.Config{}); err == nil {
		t.Fatal("New accepted an empty Config")
	}
}

// TestSignupRetried: a signup retried by the same device key (its answer
// lost to a 503 or a dropped connection) gets the account it created;
// another key, a later retry, or a session already refreshed gets
// username_taken.
func TestSignupRetried(t *testing.T) {
	fx := newFixture(t, nil)
	k := newKey(t)
	first := fx.signup(t, k, "retrier")
	again := fx.signup(t, k, "Retrier")
	if again.AccountID != first.AccountID || again.DeviceID != first.DeviceID || again.AccessToken == first.AccessToken {
		t.Fatalf("retry: %+v, first %+v", again, first)
	}
	if _, err := fx.refresh(t, k, again.RefreshToken); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  *ecdsa.PrivateKey
		user string
		wait time.Duration
	}{
		{"another key", newKey(t), "retrier2", 0},
		{"after a refresh", k, "retrier", 0},
		{"after the window", nil, "retrier3", flow.SignupRetryWindow + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == nil {
				key = newKey(t)
			}
			if tt.user != "retrier" {
				fx.signup(t, key, tt.user) // the original signup
				if tt.key != nil {
					key = newKey(t) // someone else tries the name
				}
			}
			fx.clock.Add(tt.wait)
			_, err := fx.flows.Signup(context.Background(), flow.SignupRequest{Username: tt.user, Proof: fx.proof(t, key, "POST", base+"/v1/accounts")})
			if !errors.Is(err, flow.ErrUsernameTaken) {
				t.Fatalf("err = %v, want username_taken", err)
			}
		})
	}
}
