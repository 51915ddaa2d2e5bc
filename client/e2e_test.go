package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
)

// realIssuer is `hallpass serve` in-process: the issuer package on a real
// HTTP server, the embedded bbolt store, real keys, DPoP nonces required on
// signup and refresh, a pepper for link and recovery codes. intercept,
// when set, sees every request first.
type realIssuer struct {
	URL       string
	clock     *testClock
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request, next http.Handler)]
	tokenReqs atomic.Int64 // refresh requests answered 200 (nonce challenges not counted)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// issuerTB is what startIssuer needs of a test; examples supply their own.
type issuerTB interface {
	tb
	TempDir() string
}

func startIssuer(t issuerTB) *realIssuer {
	t.Helper()
	ri := &realIssuer{clock: &testClock{}}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "hallpass.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := keys.NewRing(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	lk, err := keys.GenerateLocalKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := refresh.NewCodec(ri.clock.Now, lk)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nk, err := dpop.GenerateNonceKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nonces, err := dpop.NewNonceSource(nk, dpop.NonceOptions{Now: ri.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	pepper := make([]byte, 32)
	rand.Read(pepper)
	var handler atomic.Value
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner := handler.Load().(http.Handler)
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w}
			inner.ServeHTTP(sw, r)
			if r.URL.Path == issuer.PathToken && sw.status == http.StatusOK {
				ri.tokenReqs.Add(1)
			}
		})
		if f := ri.intercept.Load(); f != nil {
			(*f)(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	srv, err := issuer.New(issuer.Config{
		PublicURL: hs.URL,
		Store:     store,
		Keys:      ring,
		Refresh:   codec,
		DPoP:      issuer.DPoPConfig{Replay: replay, Nonces: nonces},
		Registry:  prometheus.NewRegistry(),
		Now:       ri.clock.Now,
		Pepper:    flow.StaticPepper{pepper},
		// The tests sign up many devices from one address.
		SignupLimitsOff: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	handler.Store(srv.Handler())
	ri.URL = hs.URL
	return ri
}

func (ri *realIssuer) client(t *testing.T, alg client.Algorithm, store client.StateStore, opts ...client.Option) *client.Client {
	t.Helper()
	key, err := client.GenerateDeviceKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ri.URL, key, store, append([]client.Option{client.WithClock(ri.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEndToEnd(t *testing.T) {
	for _, alg := range []client.Algorithm{client.ES256, client.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			ri := startIssuer(t)
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "state.json")
			c := ri.client(t, alg, passphraseStore(t, path, "pw"))

			s, err := c.Signup(ctx, "Alice_"+string(alg), "e2e")
			if err != nil {
				t.Fatal(err)
			}
			me, err := c.Me(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if me.AccountID != s.AccountID || me.DeviceID != s.DeviceID || me.Username != s.Username {
				t.Fatalf("me %+v != signup %+v", me, s)
			}
			rt0 := saved(t, passphraseStore(t, path, "pw")).RefreshToken
			if err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			rt1 := saved(t, passphraseStore(t, path, "pw")).RefreshToken
			if rt1 == rt0 {
				t.Fatal("refresh token not rotated")
			}

			// A later run of the app: state, key and server from the file;
			// the access token has expired, so Me refreshes first.
			ri.clock.Advance(11 * time.Minute)
			c2, err := client.Open(ctx, passphraseStore(t, path, "pw"), client.WithClock(ri.clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			me2, err := c2.Me(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if *me2 != *me {
				t.Fatalf("after restart: %+v, want %+v", me2, me)
			}
			if saved(t, passphraseStore(t, path, "pw")).RefreshToken == rt1 {
				t.Fatal("automatic refresh not saved")
			}

			if err := c2.Logout(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c2.Me(ctx); !errors.Is(err, client.ErrNoSession) {
				t.Fatalf("Me after logout: %v", err)
			}
			// The logged-out session's last refresh token is refused.
			stale := &client.MemoryStore{}
			st := saved(t, passphraseStore(t, path, "pw"))
			st.RefreshToken, st.AccessToken = rt1, ""
			stale.Save(ctx, st)
			c3, err := client.New(ri.URL, st.DeviceKey, stale, client.WithClock(ri.clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			defer c3.Close()
			if err := c3.Refresh(ctx); !errors.Is(err, client.ErrSessionEnded) {
				t.Fatalf("refresh after logout: %v, want ErrSessionEnded", err)
			}
		})
	}
}

// Against the real issuer: 50 goroutines with an expired token share one
// refresh, and a refresh answer lost on the way back is retried with the
// same refresh token and gets the same successor (no reuse detection).
func TestEndToEndRefreshRaces(t *testing.T) {
	ri := startIssuer(t)
	ctx := context.Background()
	store := &client.MemoryStore{}
	c := ri.client(t, client.ES256, store, client.WithRefreshRetryWindow(5*time.Second))
	if _, err := c.Signup(ctx, "racer", ""); err != nil {
		t.Fatal(err)
	}

	ri.clock.Advance(11 * time.Minute)
	before := ri.tokenReqs.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := c.Me(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ri.tokenReqs.Load() - before; n != 1 {
		t.Fatalf("%d refresh requests for 50 callers, want 1", n)
	}

	// Drop the first answer of the next refresh after the server handled
	// it (the token is rotated on the server, the client never hears).
	var dropped atomic.Bool
	h := func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path != issuer.PathToken || !dropped.CompareAndSwap(false, true) {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Errorf("first refresh got %d", rec.Code)
		}
		hijackClose(t, w)
	}
	ri.intercept.Store(&h)
	old := saved(t, store).RefreshToken
	before = ri.tokenReqs.Load()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := ri.tokenReqs.Load() - before; n != 2 {
		t.Fatalf("%d refreshes answered, want 2 (lost answer + retry)", n)
	}
	if saved(t, store).RefreshToken == old {
		t.Fatal("not rotated")
	}
	// The session is alive: the retry was grace, not reuse.
	ri.clock.Advance(time.Minute)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx); err != nil {
		t.Fatal(err)
	}
}
