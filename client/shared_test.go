package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/client"
)

// sharedFile is one state file used by two processes: a signs up through
// its own FileStore, b opens the file through another, as a second process
// would.
func sharedFile(t *testing.T, ri *realIssuer) (a, b *client.Client, path string) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "state.json")
	a = ri.client(t, client.ES256, passphraseStore(t, path, "pw"))
	if _, err := a.Signup(ctx, "shared_"+filepath.Base(filepath.Dir(path)), "laptop"); err != nil {
		t.Fatal(err)
	}
	b = openShared(t, ri, path)
	if _, err := b.Me(ctx); err != nil { // b holds the first pair in memory
		t.Fatal(err)
	}
	return a, b, path
}

func openShared(t *testing.T, ri *realIssuer, path string) *client.Client {
	t.Helper()
	c, err := client.Open(context.Background(), passphraseStore(t, path, "pw"), client.WithClock(ri.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A refreshes; after the grace window B, whose access token has expired,
// must take the stored tokens instead of presenting its spent refresh
// token (reuse: the device signed out).
func TestSharedFileRefreshedElsewhere(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	a, b, path := sharedFile(t, ri)

	ri.clock.Advance(11 * time.Minute) // both access tokens expired
	if _, err := a.Me(ctx); err != nil {
		t.Fatal(err)
	}
	ri.clock.Advance(time.Minute) // past the 30 s grace window; a's new access token is fresh
	before := ri.tokenReqs.Load()
	if _, err := b.Me(ctx); err != nil {
		t.Fatalf("b after a refreshed: %v", err)
	}
	if n := ri.tokenReqs.Load() - before; n != 0 {
		t.Fatalf("b sent %d refreshes; the stored access token was fresh", n)
	}

	// Now the stored access token is stale too: b refreshes with the
	// stored refresh token, and a, later, takes b's tokens.
	ri.clock.Advance(11 * time.Minute)
	if _, err := b.Me(ctx); err != nil {
		t.Fatal(err)
	}
	ri.clock.Advance(time.Minute)
	for name, c := range map[string]*client.Client{"a": a, "b": b, "a new process": openShared(t, ri, path)} {
		if _, err := c.Me(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Refresh(ctx); err != nil {
			t.Fatalf("%s: refresh: %v", name, err)
		}
	}
}

// B's own access token is still good, so its calls do not look at the
// store; a rename and a forced refresh do, and must not write back or
// present the spent refresh token B holds.
func TestSharedFileNewerTokensStored(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	a, b, path := sharedFile(t, ri)

	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	rt1 := saved(t, passphraseStore(t, path, "pw")).RefreshToken
	ri.clock.Advance(time.Minute) // past the grace window; b's access token is still valid
	if _, err := b.Me(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Rename(ctx, "renamed_"+filepath.Base(filepath.Dir(path))); err != nil {
		t.Fatal(err)
	}
	st := saved(t, passphraseStore(t, path, "pw"))
	if st.RefreshToken != rt1 || !strings.HasPrefix(st.Username, "renamed_") {
		t.Fatal("the rename did not write the new name over the stored tokens")
	}
	for name, c := range map[string]*client.Client{"b": b, "a": a, "a new process": openShared(t, ri, path)} {
		if err := c.Refresh(ctx); err != nil {
			t.Fatalf("%s: refresh: %v", name, err)
		}
		ri.clock.Advance(time.Minute)
	}
	if _, err := a.Me(ctx); err != nil {
		t.Fatal(err)
	}
}

// A logout elsewhere signs B out, and B writes nothing back; a new
// session of another account on the same file (same device key) is not
// B's to use: ErrStateMismatch, and the file keeps it.
func TestSharedFileSessionEndedElsewhere(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	a, b, path := sharedFile(t, ri)
	if err := a.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("b after a logout elsewhere: %v, want ErrNoSession", err)
	}
	if saved(t, passphraseStore(t, path, "pw")).HasSession() {
		t.Fatal("b wrote its tokens back")
	}

	b2 := openShared(t, ri, path) // logged out, with the device key
	if _, err := b2.Session(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatal(err)
	}
	s, err := a.Signup(ctx, "other_"+filepath.Base(filepath.Dir(path)), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Signup(ctx, "third", ""); !errors.Is(err, client.ErrAlreadySignedUp) {
		t.Fatalf("signup over a session saved elsewhere: %v, want ErrAlreadySignedUp", err)
	}
	c := openShared(t, ri, path)
	if _, err := c.Me(ctx); err != nil {
		t.Fatal(err)
	}
	// c holds the new account; a logs out and signs up a third one with
	// the same device key: c must not act for it.
	if err := a.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Signup(ctx, "third_"+filepath.Base(filepath.Dir(path)), ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); !errors.Is(err, client.ErrStateMismatch) {
		t.Fatalf("c with another account in the file: %v, want ErrStateMismatch", err)
	}
	if st := saved(t, passphraseStore(t, path, "pw")); st.AccountID == s.AccountID || !st.HasSession() {
		t.Fatal("c wrote over the other account's session")
	}
	if _, err := a.Me(ctx); err != nil {
		t.Fatal(err)
	}
}

// failingSaves fails the saves of one client while fail is set; the store
// behind it is shared with other clients.
type failingSaves struct {
	client.StateStore
	fail atomic.Bool
}

func (s *failingSaves) Save(ctx context.Context, st *client.State) error {
	if s.fail.Load() {
		return errSaveFailed
	}
	return s.StateStore.Save(ctx, st)
}

// A client whose save failed (ErrPersist) holds tokens that were newer
// than the store's; once another client has refreshed twice and saved, its
// own are older: neither its next call nor its Close may write them over
// the store or present them.
func TestSharedStoreUnsavedTokensOutdated(t *testing.T) {
	for _, then := range []string{"refresh", "close"} {
		t.Run(then, func(t *testing.T) {
			ri := startIssuer(t)
			ctx := context.Background()
			shared := &client.MemoryStore{}
			flaky := &failingSaves{StateStore: shared}
			a := ri.client(t, client.ES256, flaky)
			if _, err := a.Signup(ctx, "unsaved_"+then, ""); err != nil {
				t.Fatal(err)
			}
			b, err := client.New(ri.URL, saved(t, shared).DeviceKey, shared, client.WithClock(ri.clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			flaky.fail.Store(true)
			if err := a.Refresh(ctx); !errors.Is(err, client.ErrPersist) {
				t.Fatalf("a: %v, want ErrPersist", err)
			}
			for range 2 { // the same successor in the grace window, then on
				if err := b.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
			}
			newest := saved(t, shared).RefreshToken
			flaky.fail.Store(false)
			ri.clock.Advance(time.Minute) // past the grace window
			if then == "close" {
				if err := a.Close(); err != nil {
					t.Fatal(err)
				}
				if saved(t, shared).RefreshToken != newest {
					t.Fatal("Close wrote older tokens over the store")
				}
			} else if err := a.Refresh(ctx); err != nil {
				t.Fatalf("a after b refreshed: %v", err)
			}
			if err := b.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Me(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
