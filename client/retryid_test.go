package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/issuer"
)

// retryIDsSeen returns the retry_id of every refresh request the fake API saw.
func (f *fakeAPI) retryIDsSeen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.retryIDs...)
}

// checkRetryID fails unless id is 16 bytes of base64url without padding.
func checkRetryID(t *testing.T, id string) {
	t.Helper()
	if len(id) != 22 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("retry id %q is not 16 bytes of base64url without padding", id)
	}
}

// The retry id is in the store, with the refresh token it goes with,
// before the request that carries it reaches the server; the new pair is
// saved without it, and the next refresh makes another.
func TestRetryIDSavedBeforeSend(t *testing.T) {
	store := &client.MemoryStore{}
	h := newHarness(t, client.ES256, store)
	h.signup(t)
	old := saved(t, store).RefreshToken
	if id := saved(t, store).RefreshRetryID; id != "" {
		t.Fatalf("retry id %q saved at signup, before any refresh", id)
	}
	var atServer *client.State
	h.api.tokenHook = func(w http.ResponseWriter, r *http.Request, n int64, answer func()) bool {
		if n == 1 {
			atServer = saved(t, store)
		}
		return false
	}
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := h.api.retryIDsSeen()
	if len(ids) != 1 {
		t.Fatalf("%d refresh requests, want 1", len(ids))
	}
	checkRetryID(t, ids[0])
	if atServer == nil || atServer.RefreshToken != old || atServer.RefreshRetryID != ids[0] {
		t.Fatal("the store did not hold the refresh token with the retry id sent when the request reached the server")
	}
	st := saved(t, store)
	if st.RefreshToken != h.api.device(t).cur || st.RefreshRetryID != "" {
		t.Fatalf("after the refresh: new token saved %t, retry id %q; want the new token and no id",
			st.RefreshToken == h.api.device(t).cur, st.RefreshRetryID)
	}
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ids = h.api.retryIDsSeen(); len(ids) != 2 || ids[1] == ids[0] {
		t.Fatal("the next refresh token was not sent with a retry id of its own")
	}
	checkRetryID(t, ids[1])
}

// Every attempt to redeem one refresh token carries the same retry id:
// the in-process retries after lost answers, a later call after the retry
// window ran out, and a new Client on the same store (an app restart).
// The fake API answers the repeat after its grace window as the protocol
// says (retried), so the device stays signed in.
func TestRetryIDSameOnEveryAttempt(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := map[bool]string{false: "next call", true: "restart"}[restart]
		t.Run(name, func(t *testing.T) {
			store := &client.MemoryStore{}
			h := newHarness(t, client.ES256, store, client.WithRefreshRetryWindow(1500*time.Millisecond))
			h.signup(t)
			old := saved(t, store).RefreshToken
			// Every answer of the first refresh is lost after the server rotated.
			var drop atomic.Bool
			drop.Store(true)
			h.api.tokenHook = func(w http.ResponseWriter, r *http.Request, n int64, answer func()) bool {
				lose := drop.Load()
				if lose {
					hijackClose(t, w)
				}
				return lose
			}
			if err := h.c.Refresh(context.Background()); err == nil {
				t.Fatal("a refresh whose answers were all lost succeeded")
			}
			lost := h.api.retryIDsSeen()
			if len(lost) < 2 {
				t.Fatalf("%d attempts in the retry window, want at least 2", len(lost))
			}
			if st := saved(t, store); st.RefreshToken != old || st.RefreshRetryID != lost[0] {
				t.Fatal("the store lost the refresh token or its retry id after the failed refresh")
			}
			drop.Store(false)
			h.clock.Advance(11 * time.Minute) // the access token expired, the 30 s grace window is over
			c := h.c
			if restart {
				h.c.Close()
				var err error
				if c, err = client.New(h.api.URL, h.key, store, client.WithClock(h.clock.Now)); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			if _, err := c.Me(context.Background()); err != nil {
				t.Fatalf("Me after the grace window: %v", err)
			}
			all := h.api.retryIDsSeen()
			for i, id := range all {
				if id != lost[0] {
					t.Fatalf("attempt %d of %d sent another retry id", i+1, len(all))
				}
			}
			checkRetryID(t, lost[0])
			d := h.api.device(t)
			if st := saved(t, store); d.ended || st.RefreshToken != d.cur || st.RefreshRetryID != "" {
				t.Fatal("the device was signed out, or the successor was not saved without a retry id")
			}
		})
	}
}

// A store that cannot save the retry id does not hold the refresh back:
// the id stays in memory and every retry sends it.
func TestRetryIDSaveFails(t *testing.T) {
	store := &flakyStore{}
	h := newHarness(t, client.ES256, store, client.WithRefreshRetryWindow(1500*time.Millisecond))
	h.signup(t)
	store.fail.Store(true)
	h.api.tokenHook = func(w http.ResponseWriter, r *http.Request, n int64, answer func()) bool {
		if n == 1 {
			hijackClose(t, w)
			return true
		}
		return false
	}
	err := h.c.Refresh(context.Background())
	if !errors.Is(err, client.ErrPersist) {
		t.Fatalf("Refresh: %v, want ErrPersist (the new pair could not be saved either)", err)
	}
	ids := h.api.retryIDsSeen()
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("retry ids %d, want 2 equal ones", len(ids))
	}
	checkRetryID(t, ids[0])
	store.fail.Store(false)
	if _, err := h.c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := saved(t, store); st.RefreshToken != h.api.device(t).cur || st.RefreshRetryID != "" {
		t.Fatal("the new pair was not saved (without a retry id) once the store worked again")
	}
}

// No retry id, no request: a random source that fails stops the refresh
// before anything is sent.
func TestRetryIDRandomFails(t *testing.T) {
	boom := errors.New("no entropy")
	h := newHarness(t, client.ES256, nil, client.WithRandom(iotest.ErrReader(boom)))
	h.signup(t)
	before := h.api.tokenRequests.Load()
	if err := h.c.Refresh(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Refresh: %v, want the random source's error", err)
	}
	if n := h.api.tokenRequests.Load() - before; n != 0 {
		t.Fatalf("%d refresh requests sent without a retry id", n)
	}
}

// The store holds the client's own refresh token with a retry id another
// process (or an earlier run) saved, perhaps sent already: the client
// sends that id, and keeps it, rather than a new one of its own. A
// malformed stored id (which the server would refuse) is replaced.
func TestRetryIDFromStore(t *testing.T) {
	for _, tc := range []struct{ name, stored string }{
		{"stored id sent", "c3RvcmVkLXJldHJ5LWlkLTEyMw"},
		{"malformed id replaced", "short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &client.MemoryStore{}
			h := newHarness(t, client.ES256, store)
			h.signup(t)
			if _, err := h.c.Session(context.Background()); err != nil { // loaded in memory
				t.Fatal(err)
			}
			st := saved(t, store)
			st.RefreshRetryID = tc.stored
			if err := store.Save(context.Background(), st); err != nil {
				t.Fatal(err)
			}
			if err := h.c.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			ids := h.api.retryIDsSeen()
			if len(ids) != 1 {
				t.Fatalf("%d refresh requests, want 1", len(ids))
			}
			if tc.stored == "short" {
				checkRetryID(t, ids[0])
			} else if ids[0] != tc.stored {
				t.Fatal("the client sent its own retry id instead of the one stored with its refresh token")
			}
		})
	}
}

// A state file written before retry ids existed (version 1, no
// refresh_retry_id) still loads, with no retry id; a saved id round-trips.
func TestFileStoreRetryID(t *testing.T) {
	old := passphraseStore(t, filepath.Join("testdata", "state-v1-before-retry-id.json"), "pw")
	st, err := old.Load(context.Background())
	if err != nil {
		t.Fatalf("loading a file of the previous version: %v", err)
	}
	if st.AccountID != "acc_123" || st.RefreshToken != "v4.local.refresh-token-SECRET" || st.DeviceKey == nil || st.RefreshRetryID != "" {
		t.Fatalf("old file loaded as %v (retry id set: %t)", st, st.RefreshRetryID != "")
	}

	path := filepath.Join(t.TempDir(), "state.json")
	st.RefreshRetryID = "cmV0cnktaWQtcm91bmQtdHJpcA"
	if err := passphraseStore(t, path, "pw").Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	got := saved(t, passphraseStore(t, path, "pw"))
	if got.RefreshRetryID != st.RefreshRetryID || got.RefreshToken != st.RefreshToken {
		t.Fatal("the retry id did not round-trip through the file")
	}
	st.RefreshRetryID = ""
	if err := passphraseStore(t, path, "pw").Save(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if got := saved(t, passphraseStore(t, path, "pw")); got.RefreshRetryID != "" {
		t.Fatal("a cleared retry id came back from the file")
	}
}

// Against the real issuer: every answer of a refresh is lost after the
// server rotated the token (tunnel, app killed), and the device comes
// back only after the grace window. The next call, or a new process on the
// same state file (an app restart), or another process that shares the
// file and held the same refresh token before, presents the same refresh
// token with the same retry id, gets the successor, and the device stays
// signed in. Without the retry id this is reuse: the device would be
// signed out.
func TestEndToEndLostRefreshAfterGrace(t *testing.T) {
	for _, mode := range []string{"next call", "restart", "another process"} {
		t.Run(mode, func(t *testing.T) {
			ri := startIssuer(t)
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "state.json")
			c := ri.client(t, client.ES256, passphraseStore(t, path, "pw"), client.WithRefreshRetryWindow(700*time.Millisecond))
			if _, err := c.Signup(ctx, "lost_answer", "phone"); err != nil {
				t.Fatal(err)
			}
			old := saved(t, passphraseStore(t, path, "pw")).RefreshToken
			var other *client.Client
			if mode == "another process" {
				other = openShared(t, ri, path)
				if _, err := other.Me(ctx); err != nil { // holds the same tokens in memory
					t.Fatal(err)
				}
			}

			var drop atomic.Bool
			drop.Store(true)
			var mu sync.Mutex
			var sent []url.Values // the form of every refresh request
			h := func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Path != issuer.PathToken {
					next.ServeHTTP(w, r)
					return
				}
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Error(err)
				}
				r.Body = io.NopCloser(bytes.NewReader(b))
				form, _ := url.ParseQuery(string(b))
				if !drop.Load() {
					sw := &statusWriter{ResponseWriter: w}
					next.ServeHTTP(sw, r)
					if sw.status == http.StatusOK { // nonce challenges are not refreshes
						mu.Lock()
						sent = append(sent, form)
						mu.Unlock()
					}
					return
				}
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				if rec.Code == http.StatusOK { // nonce challenges are not refreshes
					mu.Lock()
					sent = append(sent, form)
					mu.Unlock()
				}
				hijackClose(t, w)
			}
			ri.intercept.Store(&h)
			if err := c.Refresh(ctx); err == nil {
				t.Fatal("a refresh whose answers were all lost succeeded")
			}
			mu.Lock()
			lost := len(sent)
			mu.Unlock()
			if lost == 0 {
				t.Fatal("no refresh reached the server")
			}

			drop.Store(false)
			ri.clock.Advance(11 * time.Minute) // access token expired, grace window long over
			switch mode {
			case "restart":
				c.Close()
				c = openShared(t, ri, path)
			case "another process":
				c = other
			}
			if _, err := c.Me(ctx); err != nil {
				t.Fatalf("Me after the grace window: %v", err)
			}
			mu.Lock()
			forms := append([]url.Values(nil), sent...)
			mu.Unlock()
			if len(forms) != lost+1 {
				t.Fatalf("%d refreshes answered, want %d lost and 1 more", len(forms), lost)
			}
			id := forms[0].Get("retry_id")
			checkRetryID(t, id)
			for i, f := range forms {
				if f.Get("refresh_token") != old || f.Get("retry_id") != id {
					t.Fatalf("refresh %d of %d did not repeat the first one's refresh token and retry id", i+1, len(forms))
				}
			}
			st := saved(t, passphraseStore(t, path, "pw"))
			if st.RefreshToken == old || st.RefreshRetryID != "" {
				t.Fatal("the successor was not saved, or its retry id was not cleared")
			}
			// Still signed in: the next rotation works.
			ri.clock.Advance(time.Minute)
			if err := c.Refresh(ctx); err != nil {
				t.Fatalf("refresh after the retried one: %v", err)
			}
			if _, err := c.Me(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
