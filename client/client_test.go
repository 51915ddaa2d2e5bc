package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/dpop"
)

// testClock is the real clock plus an offset that tests advance; the fake
// API reads the same clock, so proofs stay within the server's window.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

type harness struct {
	api   *fakeAPI
	clock *testClock
	key   crypto.Signer
	store client.StateStore
	c     *client.Client
}

func newHarness(t *testing.T, alg client.Algorithm, store client.StateStore, opts ...client.Option) *harness {
	t.Helper()
	h := &harness{clock: &testClock{}}
	h.api = newFakeAPI(t, h.clock.Now)
	var err error
	if h.key, err = client.GenerateDeviceKey(alg); err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = &client.MemoryStore{}
	}
	h.store = store
	opts = append([]client.Option{client.WithClock(h.clock.Now)}, opts...)
	if h.c, err = client.New(h.api.URL, h.key, store, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.c.Close() })
	return h
}

func (h *harness) signup(t *testing.T) *client.Session {
	t.Helper()
	s, err := h.c.Signup(context.Background(), "alice", "test phone")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func saved(t *testing.T, s client.StateStore) *client.State {
	t.Helper()
	st, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestFlow(t *testing.T) {
	for _, alg := range []client.Algorithm{client.ES256, client.EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			h := newHarness(t, alg, nil)
			ctx := context.Background()
			if _, err := h.c.Me(ctx); !errors.Is(err, client.ErrNoSession) {
				t.Fatalf("Me before signup: %v, want ErrNoSession", err)
			}
			s := h.signup(t)
			d := h.api.device(t)
			if s.AccountID != d.account || s.DeviceID != d.id || s.Username != "alice" {
				t.Fatalf("session %+v does not match the server's device", s)
			}
			if d.jkt != h.c.KeyThumbprint() {
				t.Fatal("server recorded another jkt than the client's key")
			}
			st := saved(t, h.store)
			if st.RefreshToken != d.cur || st.KeyThumbprint != d.jkt {
				t.Fatal("signup state not saved")
			}

			me, err := h.c.Me(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if me.AccountID != d.account || me.DeviceID != d.id || me.Username != "alice" {
				t.Fatalf("Me = %+v", me)
			}
			old := st.RefreshToken
			if err := h.c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			st = saved(t, h.store)
			if st.RefreshToken == old || st.RefreshToken != h.api.device(t).cur {
				t.Fatal("refresh did not save the successor")
			}
			if _, err := h.c.Me(ctx); err != nil {
				t.Fatal(err)
			}
			if err := h.c.Logout(ctx); err != nil {
				t.Fatal(err)
			}
			if st := saved(t, h.store); st.HasSession() || st.AccessToken != "" || st.AccountID != d.account {
				t.Fatalf("logout left %v", st)
			}
			if _, err := h.c.Me(ctx); !errors.Is(err, client.ErrNoSession) {
				t.Fatalf("Me after logout: %v, want ErrNoSession", err)
			}
			h.api.mu.Lock()
			defer h.api.mu.Unlock()
			if len(h.api.jkts) != 1 || !h.api.jkts[h.c.KeyThumbprint()] {
				t.Fatalf("proof keys seen: %d, want the one device key", len(h.api.jkts))
			}
		})
	}
}

// 50 goroutines find the access token expired: exactly one refresh.
func TestSingleFlightExpiredLocally(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	h.clock.Advance(11 * time.Minute)
	runMany(t, h, 50)
	if n := h.api.tokenRequests.Load(); n != 1 {
		t.Fatalf("%d refresh requests, want 1", n)
	}
	h.c.Close()
	h.api.srv.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// The server says token_expired while the client's clock thinks the token is
// fresh (clock skew): each request refreshes at most once, and the 50
// goroutines share one refresh.
func TestSingleFlightExpiredOnServer(t *testing.T) {
	h := newHarness(t, client.EdDSA, nil)
	h.signup(t)
	h.api.serverExpired.Store(true)
	var once sync.Once
	h.api.tokenHook = func(w http.ResponseWriter, r *http.Request, n int64, answer func()) bool {
		once.Do(func() { h.api.serverExpired.Store(false) })
		return false
	}
	runMany(t, h, 50)
	if n := h.api.tokenRequests.Load(); n != 1 {
		t.Fatalf("%d refresh requests, want 1", n)
	}
}

func runMany(t *testing.T, h *harness, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			req, err := h.c.NewRequest(context.Background(), http.MethodGet, "/v1/me", nil)
			if err != nil {
				errs <- err
				return
			}
			resp, err := h.c.Do(context.Background(), req)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- errors.New(resp.Status)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The first refresh answer is lost after the server rotated: the client
// retries with the same refresh token and gets the same successor.
func TestLostRefreshResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook func(t *testing.T, w http.ResponseWriter, answer func())
	}{
		{"connection dropped", func(t *testing.T, w http.ResponseWriter, _ func()) { hijackClose(t, w) }},
		{"timeout", func(t *testing.T, w http.ResponseWriter, answer func()) { time.Sleep(700 * time.Millisecond); answer() }},
		{"503", func(t *testing.T, w http.ResponseWriter, _ func()) {
			w.Header().Set("Retry-After", "0")
			problem(w, http.StatusServiceUnavailable, "unavailable")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, client.ES256, nil, client.WithRefreshRetryWindow(1500*time.Millisecond))
			h.signup(t)
			old := saved(t, h.store).RefreshToken
			h.api.tokenHook = func(w http.ResponseWriter, r *http.Request, n int64, answer func()) bool {
				if n == 1 {
					tc.hook(t, w, answer)
					return true
				}
				return false
			}
			if err := h.c.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			d := h.api.device(t)
			h.api.mu.Lock()
			redeemed := append([]string(nil), h.api.redeemed...)
			h.api.mu.Unlock()
			if len(redeemed) != 2 || redeemed[0] != old || redeemed[1] != old {
				t.Fatalf("server saw %d refreshes; want 2 with the same token", len(redeemed))
			}
			if st := saved(t, h.store); st.RefreshToken != d.cur || d.ended {
				t.Fatal("client did not end with the successor, or the device was revoked")
			}
			if _, err := h.c.Me(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A caller that gives up does not abandon the refresh: the successor is
// still received and saved.
func TestRefreshSurvivesCallerCancel(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	release := make(chan struct{})
	h.api.tokenHook = func(w http.ResponseWriter, r *http.Request, n int64, answer func()) bool {
		<-release
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.c.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh: %v, want deadline exceeded", err)
	}
	close(release)
	h.c.Close() // waits for the refresh
	if st := saved(t, h.store); st.RefreshToken != h.api.device(t).cur {
		t.Fatal("successor not saved after the caller gave up")
	}
}

func TestUseDPoPNonce(t *testing.T) {
	h := newHarness(t, client.EdDSA, nil)
	h.api.requireNonces()
	h.api.nonceOnResources = true
	h.signup(t)
	if n := h.api.nonceChallenges.Load(); n != 1 {
		t.Fatalf("%d nonce challenges on signup, want 1", n)
	}
	// The client remembers the nonce: no more challenges.
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := h.api.nonceChallenges.Load(); n != 1 {
		t.Fatalf("%d nonce challenges, want still 1", n)
	}
	// A new server nonce (key rotated): one challenge and one retry each.
	h.api.requireNonces()
	if _, err := h.c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.api.requireNonces()
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := h.api.nonceChallenges.Load(); n != 3 {
		t.Fatalf("%d nonce challenges, want 3", n)
	}
}

// A server that keeps demanding a nonce gets one retry, not a loop.
func TestUseDPoPNonceRetriedOnce(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	h.api.setOverride(func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		h.api.resourceRequests.Add(1)
		w.Header().Set("DPoP-Nonce", randToken("n"))
		problem(w, http.StatusUnauthorized, "use_dpop_nonce")
	})
	_, err := h.c.Me(context.Background())
	if client.ErrorCode(err) != client.CodeUseDPoPNonce {
		t.Fatalf("Me: %v, want use_dpop_nonce", err)
	}
	if n := h.api.resourceRequests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestInvalidGrant(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	h.api.endDevices()
	d := h.api.device(t)
	err := h.c.Refresh(context.Background())
	if !errors.Is(err, client.ErrSessionEnded) || client.ErrorCode(err) != client.CodeInvalidGrant {
		t.Fatalf("Refresh: %v, want ErrSessionEnded", err)
	}
	if st := saved(t, h.store); st.RefreshToken != d.cur {
		t.Fatal("the refresh token was dropped on invalid_grant")
	}
	// Logout on an ended session clears the local state.
	h.clock.Advance(time.Hour)
	if err := h.c.Logout(context.Background()); !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("Logout: %v", err)
	}
	if saved(t, h.store).HasSession() {
		t.Fatal("logout kept the session")
	}
}

// flakyStore fails saves while fail is set.
type flakyStore struct {
	client.MemoryStore
	fail atomic.Bool
}

func (s *flakyStore) Save(ctx context.Context, st *client.State) error {
	if s.fail.Load() {
		return errSaveFailed
	}
	return s.MemoryStore.Save(ctx, st)
}

func TestPersistFailureKeepsTokens(t *testing.T) {
	store := &flakyStore{}
	h := newHarness(t, client.ES256, store)
	h.signup(t)
	store.fail.Store(true)
	err := h.c.Refresh(context.Background())
	if !errors.Is(err, client.ErrPersist) || !errors.Is(err, errSaveFailed) {
		t.Fatalf("Refresh: %v, want ErrPersist", err)
	}
	// The successor is in memory: the next call uses it (the old access
	// token is still valid on the server, so check the refresh token by
	// refreshing again, which would be reuse if the client had kept the
	// old one outside the grace window).
	h.clock.Advance(time.Minute)
	store.fail.Store(false)
	if _, err := h.c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := saved(t, h.store); st.RefreshToken != h.api.device(t).cur {
		t.Fatal("the save was not retried")
	}
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.api.device(t).ended {
		t.Fatal("reuse detected: the client lost its successor")
	}
}

// TestCloseUnsavedTokens: a process that refreshed while its store failed
// must not exit with the successor in memory only; the next process would
// start from the spent refresh token, which is reuse once the grace window
// is over. Close saves it once more, and says ErrPersist when that fails
// too.
func TestCloseUnsavedTokens(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recovered bool // the store works again by Close
	}{
		{name: "store back: saved", recovered: true},
		{name: "store still failing: reported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &flakyStore{}
			h := newHarness(t, client.ES256, store)
			h.signup(t)
			store.fail.Store(true)
			if err := h.c.Refresh(context.Background()); !errors.Is(err, client.ErrPersist) {
				t.Fatalf("Refresh: %v, want ErrPersist", err)
			}
			store.fail.Store(!tc.recovered)
			err := h.c.Close()
			if !tc.recovered {
				if !errors.Is(err, client.ErrPersist) {
					t.Fatalf("Close: %v, want ErrPersist", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
			if st := saved(t, h.store); st.RefreshToken != h.api.device(t).cur {
				t.Fatal("Close left the refreshed tokens unsaved")
			}
		})
	}
}

func TestSignupErrors(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	if _, err := h.c.Signup(context.Background(), "bob", ""); !errors.Is(err, client.ErrAlreadySignedUp) {
		t.Fatalf("second signup: %v", err)
	}
	other, err := client.New(h.api.URL, h.key, &client.MemoryStore{}, client.WithClock(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Signup(context.Background(), "ALICE", "")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != client.CodeUsernameTaken || ae.Status != http.StatusConflict {
		t.Fatalf("taken username: %v", err)
	}
	if strings.Contains(err.Error(), "ALICE") {
		t.Fatal("error echoes request data")
	}
}

func TestNewValidation(t *testing.T) {
	ed, _ := client.GenerateDeviceKey(client.EdDSA)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		url  string
		key  crypto.Signer
		opts []client.Option
		ok   bool
	}{
		{"https", "https://login.example.com/", ed, nil, true},
		{"https with prefix", "https://example.com/auth/", ed, nil, true},
		{"http loopback", "http://127.0.0.1:8080", ed, nil, true},
		{"http localhost", "http://localhost:8080", ed, nil, true},
		{"http remote", "http://login.example.com", ed, nil, false},
		{"http remote allowed", "http://login.example.com", ed, []client.Option{client.WithInsecureHTTP()}, true},
		{"userinfo", "https://u:p@example.com", ed, nil, false},
		{"query", "https://example.com/?x=1", ed, nil, false},
		{"relative", "/v1", ed, nil, false},
		{"ftp", "ftp://example.com", ed, nil, false},
		{"P-384 key", "https://example.com", p384, nil, false},
		{"nil key", "https://example.com", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.New(tc.url, tc.key, &client.MemoryStore{}, tc.opts...)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%q): %v", tc.url, err)
			}
		})
	}
}

func TestStateMismatch(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	other, _ := client.GenerateDeviceKey(client.ES256)
	for _, tc := range []struct {
		name string
		url  string
		key  crypto.Signer
	}{
		{"other server", "https://example.com", h.key},
		{"other key", h.api.URL, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(tc.url, tc.key, h.store)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Me(context.Background()); !errors.Is(err, client.ErrStateMismatch) {
				t.Fatalf("Me: %v, want ErrStateMismatch", err)
			}
		})
	}
	// The same server URL spelled with a trailing slash is the same.
	c, err := client.New(h.api.URL+"/", h.key, h.store, client.WithClock(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDoRefusesOtherOrigin(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	for _, u := range []string{"https://evil.example/v1/me", strings.Replace(h.api.URL, "http://", "https://", 1) + "/v1/me"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := h.c.Do(context.Background(), req); !errors.Is(err, client.ErrOtherOrigin) {
			t.Fatalf("Do(%s): %v", u, err)
		}
	}
	if n := h.api.resourceRequests.Load(); n != 0 {
		t.Fatal("request was sent")
	}
}

// Do leaves non-2xx answers to the caller with the body intact.
func TestDoReturnsErrorBody(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	req, _ := h.c.NewRequest(context.Background(), http.MethodGet, "/v1/nope", nil)
	resp, err := h.c.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// A 401 with a code the client does not act on keeps its body.
	h.api.setOverride(func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		problem(w, http.StatusUnauthorized, "invalid_token")
	})
	err = h.c.CallJSON(context.Background(), http.MethodGet, "/v1/me", nil, nil)
	if client.ErrorCode(err) != client.CodeInvalidToken {
		t.Fatalf("CallJSON: %v", err)
	}
}

func TestProofsVerify(t *testing.T) {
	// Every request of TestFlow is checked by the fake API; this checks
	// the properties directly on one captured proof.
	h := newHarness(t, client.EdDSA, nil)
	h.signup(t)
	headers := make(chan http.Header, 1)
	h.api.setOverride(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		headers <- r.Header.Clone()
		next.ServeHTTP(w, r)
	})
	if err := h.c.CallJSON(context.Background(), http.MethodGet, "/v1/me?x=1", nil, nil); err != nil {
		t.Fatal(err)
	}
	got := <-headers
	tok := strings.TrimPrefix(got.Get("Authorization"), "DPoP ")
	rc, _ := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	p, err := dpop.Verify(context.Background(), got.Get("DPoP"), dpop.Request{
		Method: http.MethodGet, URL: h.api.URL + "/v1/me", AccessToken: tok, JKT: h.c.KeyThumbprint(),
	}, dpop.Options{Replay: rc, Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if p.JKT != h.c.KeyThumbprint() {
		t.Fatal("jkt")
	}
	for _, bad := range []dpop.Request{
		{Method: http.MethodPost, URL: h.api.URL + "/v1/me", AccessToken: tok},
		{Method: http.MethodGet, URL: h.api.URL + "/v1/logout", AccessToken: tok},
		{Method: http.MethodGet, URL: h.api.URL + "/v1/me", AccessToken: tok + "x"},
	} {
		rc, _ := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
		if _, err := dpop.Verify(context.Background(), got.Get("DPoP"), bad, dpop.Options{Replay: rc, Now: h.clock.Now}); err == nil {
			t.Fatalf("proof also valid for %+v", bad)
		}
	}
}

func TestStateStringsHideSecrets(t *testing.T) {
	st := client.State{AccountID: "acc_1", AccessToken: "at_secret", RefreshToken: "rt_secret"}
	for _, s := range []string{st.String(), st.GoString()} {
		if strings.Contains(s, "secret") {
			t.Fatalf("%q shows a token", s)
		}
	}
}

func TestClosed(t *testing.T) {
	h := newHarness(t, client.ES256, nil)
	h.signup(t)
	h.c.Close()
	if _, err := h.c.Me(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Me after Close: %v", err)
	}
}
