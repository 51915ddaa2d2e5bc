package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/client"
)

// TestLinkEndToEnd: against the real issuer (nonces required), a link code
// from a signed-in phone joins a tablet to the account as a device of its
// own, once; a used or wrong code is ErrInvalidLinkCode and saves nothing;
// a device whose session ended comes back through a link code.
func TestLinkEndToEnd(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	phone := ri.client(t, client.ES256, &client.MemoryStore{})
	sp, err := phone.Signup(ctx, "Linker", "phone")
	if err != nil {
		t.Fatal(err)
	}
	code, expires, err := phone.CreateLinkCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := expires.Sub(ri.clock.Now()); d < 9*time.Minute || d > 11*time.Minute {
		t.Fatalf("link code expires in %v, want about 10 minutes", d)
	}
	if _, _, err := phone.CreateLinkCode(ctx); err != nil {
		t.Fatalf("a second live code: %v", err)
	}

	// A new client holds no server nonce: its first try is challenged
	// (use_dpop_nonce) and retried once with the nonce, as at signup.
	var linkTries atomic.Int64
	count := func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path == "/v1/link" {
			linkTries.Add(1)
		}
		next.ServeHTTP(w, r)
	}
	ri.intercept.Store(&count)
	tabletStore := &client.MemoryStore{}
	tablet := ri.client(t, client.EdDSA, tabletStore)
	st, err := tablet.Link(ctx, code, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	ri.intercept.Store(nil)
	if n := linkTries.Load(); n != 2 {
		t.Fatalf("%d link requests, want 2 (nonce challenge, retry)", n)
	}
	if st.AccountID != sp.AccountID || st.Username != "Linker" || st.DeviceID == sp.DeviceID {
		t.Fatalf("linked session %+v, phone's %+v", st, sp)
	}
	if s := saved(t, tabletStore); !s.HasSession() || s.AccountID != sp.AccountID || s.DeviceID != st.DeviceID || s.KeyThumbprint != tablet.KeyThumbprint() {
		t.Fatalf("linked state not saved: %v", s)
	}
	me, err := tablet.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.AccountID != sp.AccountID || me.DeviceID != st.DeviceID {
		t.Fatalf("me on the tablet %+v", me)
	}
	if err := tablet.Refresh(ctx); err != nil {
		t.Fatalf("refresh on the tablet: %v", err)
	}
	devs, err := phone.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 {
		t.Fatalf("devices after the link: %+v", devs)
	}
	if _, err := tablet.Link(ctx, code, ""); !errors.Is(err, client.ErrAlreadySignedUp) {
		t.Fatalf("link on a client with a session: %v", err)
	}

	for _, tc := range []struct {
		name, code string
	}{
		{"used", code},
		{"wrong", "ABCD-EFGH-JKMN"},
		{"malformed", "not a code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &client.MemoryStore{}
			c := ri.client(t, client.EdDSA, store)
			_, err := c.Link(ctx, tc.code, "")
			if !errors.Is(err, client.ErrInvalidLinkCode) || client.ErrorCode(err) != client.CodeInvalidLinkCode {
				t.Fatalf("link: %v, want ErrInvalidLinkCode", err)
			}
			if errors.Is(err, client.ErrInvalidRecoveryCode) || errors.Is(err, client.ErrSessionEnded) {
				t.Fatalf("%v matches another sentinel", err)
			}
			if s := saved(t, store); s.HasSession() {
				t.Fatal("a refused link saved a session")
			}
		})
	}

	// The tablet signs the phone out; the phone's session has ended, and
	// it comes back as a new device (new key, empty store) with a link
	// code from the tablet.
	if err := tablet.RevokeDevice(ctx, sp.DeviceID); err != nil {
		t.Fatal(err)
	}
	if err := phone.Refresh(ctx); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("refresh on the signed-out phone: %v, want ErrSessionEnded", err)
	}
	back, _, err := tablet.CreateLinkCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again := ri.client(t, client.ES256, &client.MemoryStore{})
	sa, err := again.Link(ctx, back, "phone again")
	if err != nil {
		t.Fatal(err)
	}
	if sa.AccountID != sp.AccountID || sa.DeviceID == sp.DeviceID {
		t.Fatalf("came back as %+v", sa)
	}
}

// TestRecoverEndToEnd: recovery codes, shown once, bring the account back
// on a new device with its id and username; the other devices are signed
// out unless asked otherwise; a used code, a wrong one and an unknown
// username are one ErrInvalidRecoveryCode.
func TestRecoverEndToEnd(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	phone := ri.client(t, client.ES256, &client.MemoryStore{})
	sp, err := phone.Signup(ctx, "phoenix", "phone")
	if err != nil {
		t.Fatal(err)
	}
	me, err := phone.Me(ctx)
	if err != nil || me.RecoveryCodesLeft != 0 {
		t.Fatalf("me before any codes: %+v, %v", me, err)
	}
	codes, err := phone.CreateRecoveryCodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		seen[c] = true
	}
	if len(codes) != 10 || len(seen) != 10 {
		t.Fatalf("recovery codes %q", codes)
	}
	if me, err := phone.Me(ctx); err != nil || me.RecoveryCodesLeft != 10 {
		t.Fatalf("me after making codes: %+v, %v", me, err)
	}

	// Kept: the phone stays signed in.
	kept := ri.client(t, client.EdDSA, &client.MemoryStore{})
	sk, err := kept.Recover(ctx, "phoenix", codes[0], "kept", false)
	if err != nil {
		t.Fatal(err)
	}
	if sk.AccountID != sp.AccountID || sk.Username != "phoenix" || sk.DeviceID == sp.DeviceID {
		t.Fatalf("recovered session %+v", sk)
	}
	if _, err := phone.Me(ctx); err != nil {
		t.Fatalf("signOutOthers=false signed the phone out: %v", err)
	}

	// The phone is lost: recover on a new one, signing the others out.
	newStore := &client.MemoryStore{}
	fresh := ri.client(t, client.EdDSA, newStore)
	sf, err := fresh.Recover(ctx, "PHOENIX", codes[1], "new phone", true)
	if err != nil {
		t.Fatal(err)
	}
	if sf.AccountID != sp.AccountID || sf.Username != "phoenix" {
		t.Fatalf("recovered session %+v", sf)
	}
	if s := saved(t, newStore); !s.HasSession() || s.AccountID != sp.AccountID {
		t.Fatalf("recovered state not saved: %v", s)
	}
	for name, old := range map[string]*client.Client{"phone": phone, "kept": kept} {
		if _, err := old.Me(ctx); err == nil {
			t.Fatalf("%s still signed in", name)
		}
		if err := old.Refresh(ctx); !errors.Is(err, client.ErrSessionEnded) {
			t.Fatalf("%s refresh: %v, want ErrSessionEnded", name, err)
		}
	}
	if me, err := fresh.Me(ctx); err != nil || me.RecoveryCodesLeft != 8 || me.AccountID != sp.AccountID {
		t.Fatalf("me on the recovered phone: %+v, %v", me, err)
	}
	if _, err := fresh.Recover(ctx, "phoenix", codes[2], "", true); !errors.Is(err, client.ErrAlreadySignedUp) {
		t.Fatalf("recover on a client with a session: %v", err)
	}

	var bodies []string
	for _, tc := range []struct {
		name, username, code string
	}{
		{"used code", "phoenix", codes[1]},
		{"wrong code", "phoenix", "ABCDE-FGHJK-MNPQR-STVWX"},
		{"unknown user", "nosuchuser", codes[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &client.MemoryStore{}
			c := ri.client(t, client.ES256, store)
			_, err := c.Recover(ctx, tc.username, tc.code, "", true)
			if !errors.Is(err, client.ErrInvalidRecoveryCode) || errors.Is(err, client.ErrInvalidLinkCode) {
				t.Fatalf("recover: %v, want ErrInvalidRecoveryCode", err)
			}
			var ae *client.APIError
			errors.As(err, &ae)
			bodies = append(bodies, ae.Error()+ae.Title+ae.Detail)
			if s := saved(t, store); s.HasSession() {
				t.Fatal("a refused recovery saved a session")
			}
		})
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("refusals differ: %q", bodies)
		}
	}
	// The codes left still work.
	if _, err := ri.client(t, client.ES256, &client.MemoryStore{}).Recover(ctx, "phoenix", codes[2], "", true); err != nil {
		t.Fatal(err)
	}
}

// TestRenameAndDeleteEndToEnd: a rename shows on every device and in the
// saved state; deleting the account signs every device out, drops the
// local session and ids, and holds the name.
func TestRenameAndDeleteEndToEnd(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	store := &client.MemoryStore{}
	phone := ri.client(t, client.ES256, store)
	sp, err := phone.Signup(ctx, "oldname", "phone")
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := phone.CreateLinkCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tablet := ri.client(t, client.EdDSA, &client.MemoryStore{})
	if _, err := tablet.Link(ctx, code, "tablet"); err != nil {
		t.Fatal(err)
	}
	if _, err := ri.client(t, client.EdDSA, &client.MemoryStore{}).Signup(ctx, "taken", ""); err != nil {
		t.Fatal(err)
	}

	me, err := phone.Rename(ctx, "NewName")
	if err != nil {
		t.Fatal(err)
	}
	if me.Username != "NewName" || me.AccountID != sp.AccountID || me.DeviceID != sp.DeviceID {
		t.Fatalf("rename answered %+v", me)
	}
	if s, _ := phone.Session(ctx); s.Username != "NewName" {
		t.Fatalf("session after rename %+v", s)
	}
	if s := saved(t, store); s.Username != "NewName" {
		t.Fatalf("saved username %q", s.Username)
	}
	if me, err := tablet.Me(ctx); err != nil || me.Username != "NewName" {
		t.Fatalf("me on the tablet: %+v, %v", me, err)
	}
	for _, tc := range []struct{ name, code string }{
		{"TAKEN", client.CodeUsernameTaken},
		{"oldname", client.CodeUsernameTaken}, // held after the rename
		{"a", client.CodeUsernameInvalid},
	} {
		if _, err := phone.Rename(ctx, tc.name); client.ErrorCode(err) != tc.code {
			t.Fatalf("rename to %q: %v, want %s", tc.name, err, tc.code)
		}
	}
	if s := saved(t, store); s.Username != "NewName" {
		t.Fatalf("a refused rename changed the state: %q", s.Username)
	}

	if err := phone.DeleteAccount(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Session(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("session after delete: %v", err)
	}
	if s := saved(t, store); s.HasSession() || s.AccessToken != "" || s.AccountID != "" || s.DeviceID != "" || s.Username != "" || s.DeviceKey == nil {
		t.Fatalf("state after delete: %v", s)
	}
	if err := phone.DeleteAccount(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := tablet.Me(ctx); err == nil {
		t.Fatal("the tablet is still signed in")
	}
	// The tablet's own delete finds its session over: refused, and its
	// dead tokens dropped.
	if err := tablet.DeleteAccount(ctx); err == nil {
		t.Fatal("delete on a signed-out device succeeded")
	}
	if _, err := tablet.Session(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("tablet session after a refused delete: %v", err)
	}
	if _, err := ri.client(t, client.EdDSA, &client.MemoryStore{}).Signup(ctx, "newname", ""); client.ErrorCode(err) != client.CodeUsernameTaken {
		t.Fatalf("signup with the deleted account's name: %v, want username_taken", err)
	}
	// The device key stays: the same client may start a new account.
	if _, err := phone.Signup(ctx, "fresh_start", "phone"); err != nil {
		t.Fatal(err)
	}
}

// TestAPIErrorIs: each sentinel matches its own code only.
func TestAPIErrorIs(t *testing.T) {
	sentinels := []error{client.ErrSessionEnded, client.ErrInvalidLinkCode, client.ErrInvalidRecoveryCode}
	for _, tc := range []struct {
		code string
		want error
	}{
		{client.CodeInvalidGrant, client.ErrSessionEnded},
		{client.CodeInvalidLinkCode, client.ErrInvalidLinkCode},
		{client.CodeInvalidRecoveryCode, client.ErrInvalidRecoveryCode},
		{client.CodeTokenRevoked, nil},
		{"", nil},
	} {
		t.Run(tc.code, func(t *testing.T) {
			err := error(&client.APIError{Status: http.StatusBadRequest, Code: tc.code})
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(%s, %v) = %t", tc.code, s, got)
				}
			}
		})
	}
}

// TestCodesFromAHostileServer: link and recovery codes that are not the
// API's shape (terminal escapes, other text, nothing) are ErrBadResponse,
// never handed to the app to show.
func TestCodesFromAHostileServer(t *testing.T) {
	for _, tc := range []struct {
		name, path, body string
	}{
		{"escape in a link code", "/v1/me/link-codes", `{"code":"ABCD\u001b[2J","expires_at":"2030-01-01T00:00:00Z"}`},
		{"link code without expiry", "/v1/me/link-codes", `{"code":"ABCD-EFGH-JKMN"}`},
		{"empty link code", "/v1/me/link-codes", `{"code":"","expires_at":"2030-01-01T00:00:00Z"}`},
		{"text as a recovery code", "/v1/me/recovery-codes", `{"codes":["ABCDE-FGHJK","call +1 555 0100 for help"]}`},
		{"no recovery codes", "/v1/me/recovery-codes", `{"codes":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, client.EdDSA, nil)
			h.signup(t)
			h.api.setOverride(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Path != tc.path {
					next.ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte(tc.body))
			})
			var err error
			if tc.path == "/v1/me/link-codes" {
				_, _, err = h.c.CreateLinkCode(context.Background())
			} else {
				_, err = h.c.CreateRecoveryCodes(context.Background())
			}
			if !errors.Is(err, client.ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
		})
	}
}

// TestJoinAnswerLost: a link or recovery whose answer is lost after the
// server redeemed the code (the connection dropped) is repeated by the app
// with the same code on the same client (the same key): the server answers
// with the device the lost request created, and no second device appears.
func TestJoinAnswerLost(t *testing.T) {
	for _, tc := range []struct {
		path string
		join func(ctx context.Context, phone, c *client.Client) (*client.Session, error)
	}{
		{"/v1/link", func(ctx context.Context, phone, c *client.Client) (*client.Session, error) {
			code, _, err := phone.CreateLinkCode(ctx)
			if err != nil {
				return nil, err
			}
			if _, err := c.Link(ctx, code, "tablet"); err == nil {
				return nil, errors.New("the first link succeeded, its answer was not lost")
			}
			return c.Link(ctx, code, "tablet")
		}},
		{"/v1/recover", func(ctx context.Context, phone, c *client.Client) (*client.Session, error) {
			codes, err := phone.CreateRecoveryCodes(ctx)
			if err != nil {
				return nil, err
			}
			if _, err := c.Recover(ctx, "lostjoin", codes[0], "tablet", false); err == nil {
				return nil, errors.New("the first recovery succeeded, its answer was not lost")
			}
			return c.Recover(ctx, "lostjoin", codes[0], "tablet", false)
		}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			ri := startIssuer(t)
			ctx := context.Background()
			phone := ri.client(t, client.ES256, &client.MemoryStore{})
			sp, err := phone.Signup(ctx, "lostjoin", "phone")
			if err != nil {
				t.Fatal(err)
			}
			var tries, served atomic.Int64
			lose := func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				// The first try is challenged for a nonce; the second
				// redeems, and its answer is lost.
				if r.URL.Path == tc.path && tries.Add(1) == 2 {
					rec := httptest.NewRecorder()
					next.ServeHTTP(rec, r)
					served.Store(int64(rec.Code))
					hijackClose(t, w)
					return
				}
				next.ServeHTTP(w, r)
			}
			ri.intercept.Store(&lose)
			tablet := ri.client(t, client.EdDSA, &client.MemoryStore{})
			st, err := tc.join(ctx, phone, tablet)
			ri.intercept.Store(nil)
			if err != nil {
				t.Fatalf("the repeated call: %v", err)
			}
			if served.Load() != http.StatusCreated {
				t.Fatalf("the lost request was answered %d, want 201", served.Load())
			}
			devs, err := phone.Devices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.AccountID != sp.AccountID || len(devs) != 2 {
				t.Fatalf("session %+v, %d devices; want the phone's account with 2 devices", st, len(devs))
			}
			if err := tablet.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if me, err := tablet.Me(ctx); err != nil || me.DeviceID != st.DeviceID {
				t.Fatalf("me %+v, %v", me, err)
			}
		})
	}
}
