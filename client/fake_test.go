package client_test

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hallpass/hallpass/dpop"
)

// fakeAPI is an in-memory stand-in for the issuer's HTTP API. It verifies
// every DPoP proof with dpop.Verify (htm, htu, ath, jkt binding, replay)
// and implements refresh rotation with a grace window as docs/protocol.md
// (Session state machine) specifies.
// tb is the part of testing.TB the fake needs; examples supply their own.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Error(args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

type fakeAPI struct {
	t      tb
	srv    *httptest.Server
	URL    string
	now    func() time.Time
	replay *dpop.MemoryReplayCache

	accessTTL time.Duration
	grace     time.Duration
	// nonces, when set, is demanded on signup and refresh, and on
	// resources too when nonceOnResources.
	nonces           *dpop.NonceSource
	nonceOnResources bool

	// tokenHook, when set, runs for each /v1/token request after the
	// answer is decided; it may write the answer itself (return true),
	// e.g. to drop the connection.
	tokenHook func(w http.ResponseWriter, r *http.Request, n int64, answer func()) bool
	// override, when set, handles every request (next is the fake API).
	override atomic.Pointer[func(w http.ResponseWriter, r *http.Request, next http.Handler)]
	// serverExpired makes every access token count as expired.
	serverExpired atomic.Bool

	signups, tokenRequests, resourceRequests, nonceChallenges atomic.Int64

	mu            sync.Mutex
	usernames     map[string]string // lower-case name -> account id
	devices       map[string]*fakeDevice
	access        map[string]fakeAccess
	refreshTokens map[string]string // refresh token -> device id
	jkts          map[string]bool   // every proof jkt seen
	redeemed      []string          // refresh tokens presented, in order
	retryIDs      []string          // retry_id of each of them ("" for none)
	proofFailures []string
}

type fakeDevice struct {
	id, account, username, jkt string
	cur, prev                  string
	rotatedAt                  time.Time
	successor                  map[string]any
	retryDigest                []byte // SHA-256 of the retry id of the last advance; nil for none
	ended                      bool
}

type fakeAccess struct {
	device string
	exp    time.Time
}

func newFakeAPI(t tb, now func() time.Time) *fakeAPI {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	rc, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{
		t: t, now: now, replay: rc,
		accessTTL: 10 * time.Minute, grace: 30 * time.Second,
		usernames: map[string]string{}, devices: map[string]*fakeDevice{},
		access: map[string]fakeAccess{}, refreshTokens: map[string]string{}, jkts: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/accounts", f.signup)
	mux.HandleFunc("POST /v1/token", f.token)
	mux.HandleFunc("GET /v1/me", f.me)
	mux.HandleFunc("POST /v1/logout", f.logout)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := f.override.Load(); h != nil {
			(*h)(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	f.URL = f.srv.URL
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.proofFailures {
			t.Errorf("fake API refused a proof: %s", p)
		}
	})
	return f
}

func (f *fakeAPI) requireNonces() {
	k, err := dpop.GenerateNonceKey(rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	f.nonces, err = dpop.NewNonceSource(k, dpop.NonceOptions{Now: f.now})
	if err != nil {
		f.t.Fatal(err)
	}
}

func randToken(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`", algs="ES256 EdDSA"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "urn:hallpass:problem:" + code, "title": code, "status": status, "code": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// verify checks the request's proof; on failure it answers and returns nil.
// Failures other than a nonce challenge are recorded: the client under test
// must never send a bad proof.
func (f *fakeAPI) verify(w http.ResponseWriter, r *http.Request, accessToken, jkt string, nonces bool) *dpop.Proof {
	opts := dpop.Options{Replay: f.replay, Now: f.now}
	if nonces && f.nonces != nil {
		opts.Nonces = f.nonces
	}
	p, err := dpop.Verify(r.Context(), r.Header.Get("DPoP"), dpop.Request{
		Method: r.Method, URL: f.URL + r.URL.Path, AccessToken: accessToken, JKT: jkt,
	}, opts)
	if err != nil {
		status := http.StatusBadRequest
		if accessToken != "" {
			status = http.StatusUnauthorized
		}
		code := dpop.ErrorCode(err)
		if code == dpop.CodeUseNonce {
			f.nonceChallenges.Add(1)
			w.Header().Set("DPoP-Nonce", f.nonces.Issue())
		} else {
			f.mu.Lock()
			f.proofFailures = append(f.proofFailures, r.Method+" "+r.URL.Path+": "+err.Error())
			f.mu.Unlock()
		}
		problem(w, status, code)
		return nil
	}
	f.mu.Lock()
	f.jkts[p.JKT] = true
	f.mu.Unlock()
	return p
}

// issueLocked mints a token pair for d. f.mu must be held.
func (f *fakeAPI) issueLocked(d *fakeDevice) map[string]any {
	at, rt := randToken("at_"), randToken("rt_")
	f.access[at] = fakeAccess{device: d.id, exp: f.now().Add(f.accessTTL)}
	f.refreshTokens[rt] = d.id
	d.cur = rt
	return map[string]any{"access_token": at, "token_type": "DPoP", "expires_in": int(f.accessTTL / time.Second), "refresh_token": rt}
}

func (f *fakeAPI) signup(w http.ResponseWriter, r *http.Request) {
	p := f.verify(w, r, "", "", true)
	if p == nil {
		return
	}
	var in struct {
		Username   string `json:"username"`
		DeviceName string `json:"device_name"`
	}
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&in) != nil || in.Username == "" {
		problem(w, http.StatusBadRequest, "invalid_request")
		return
	}
	f.signups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.usernames[strings.ToLower(in.Username)]; ok {
		problem(w, http.StatusConflict, "username_taken")
		return
	}
	d := &fakeDevice{id: randToken("dev_"), account: randToken("acc_"), username: in.Username, jkt: p.JKT}
	f.usernames[strings.ToLower(in.Username)] = d.account
	f.devices[d.id] = d
	out := f.issueLocked(d)
	out["account_id"], out["username"], out["device_id"] = d.account, d.username, d.id
	writeJSON(w, http.StatusCreated, out)
}

func (f *fakeAPI) token(w http.ResponseWriter, r *http.Request) {
	n := f.tokenRequests.Add(1)
	p := f.verify(w, r, "", "", true)
	if p == nil {
		return
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ParseForm() != nil ||
		r.PostForm.Get("grant_type") != "refresh_token" {
		problem(w, http.StatusBadRequest, "invalid_request")
		return
	}
	rt, rid := r.PostForm.Get("refresh_token"), r.PostForm.Get("retry_id")
	if _, ok := r.PostForm["retry_id"]; ok && !fakeRetryIDOK(rid) {
		problem(w, http.StatusBadRequest, "invalid_request")
		return
	}
	f.mu.Lock()
	f.redeemed = append(f.redeemed, rt)
	f.retryIDs = append(f.retryIDs, rid)
	status, body, code := f.rotateLocked(rt, rid, p.JKT)
	f.mu.Unlock()
	answer := func() {
		if code != "" {
			problem(w, status, code)
		} else {
			writeJSON(w, status, body)
		}
	}
	if f.tokenHook != nil && f.tokenHook(w, r, n, answer) {
		return
	}
	answer()
}

// rotateLocked is the single-use rule of docs/protocol.md (The refresh
// step). f.mu must be held.
func (f *fakeAPI) rotateLocked(rt, rid, jkt string) (int, map[string]any, string) {
	d := f.devices[f.refreshTokens[rt]]
	if d == nil || d.ended || d.jkt != jkt { // binding before any change
		return http.StatusBadRequest, nil, "invalid_grant"
	}
	switch {
	case rt == d.cur:
		d.prev, d.rotatedAt, d.retryDigest = d.cur, f.now(), nil
		if rid != "" {
			sum := sha256.Sum256([]byte(rid))
			d.retryDigest = sum[:]
		}
		d.successor = f.issueLocked(d)
		return http.StatusOK, d.successor, ""
	case rt == d.prev && f.now().Sub(d.rotatedAt) <= f.grace:
		return http.StatusOK, d.successor, ""
	case rt == d.prev && rid != "" && d.retryDigest != nil:
		sum := sha256.Sum256([]byte(rid))
		if subtle.ConstantTimeCompare(sum[:], d.retryDigest) == 1 {
			// Retried: the stored successor's refresh token, a fresh
			// access token.
			at := randToken("at_")
			f.access[at] = fakeAccess{device: d.id, exp: f.now().Add(f.accessTTL)}
			out := map[string]any{}
			for k, v := range d.successor {
				out[k] = v
			}
			out["access_token"] = at
			return http.StatusOK, out, ""
		}
	}
	d.ended = true // reuse detected
	return http.StatusBadRequest, nil, "invalid_grant"
}

// fakeRetryIDOK: base64url without padding, 22 to 64 characters.
func fakeRetryIDOK(id string) bool {
	if len(id) < 22 || len(id) > 64 {
		return false
	}
	return strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// authenticate checks the access token and its proof; nil means answered.
func (f *fakeAPI) authenticate(w http.ResponseWriter, r *http.Request) *fakeDevice {
	f.resourceRequests.Add(1)
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if scheme != "DPoP" || tok == "" {
		problem(w, http.StatusUnauthorized, "invalid_token")
		return nil
	}
	f.mu.Lock()
	a, ok := f.access[tok]
	var d *fakeDevice
	if ok {
		d = f.devices[a.device]
	}
	f.mu.Unlock()
	switch {
	case !ok:
		problem(w, http.StatusUnauthorized, "invalid_token")
		return nil
	case !f.now().Before(a.exp) || f.serverExpired.Load():
		problem(w, http.StatusUnauthorized, "token_expired")
		return nil
	}
	if f.verify(w, r, tok, d.jkt, f.nonceOnResources) == nil {
		return nil
	}
	f.mu.Lock()
	ended := d.ended
	f.mu.Unlock()
	if ended {
		problem(w, http.StatusUnauthorized, "token_revoked")
		return nil
	}
	return d
}

func (f *fakeAPI) me(w http.ResponseWriter, r *http.Request) {
	if d := f.authenticate(w, r); d != nil {
		writeJSON(w, http.StatusOK, map[string]string{"account_id": d.account, "username": d.username, "device_id": d.id})
	}
}

func (f *fakeAPI) logout(w http.ResponseWriter, r *http.Request) {
	if d := f.authenticate(w, r); d != nil {
		f.mu.Lock()
		d.ended = true
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeAPI) setOverride(h func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	f.override.Store(&h)
}

// device returns a copy of the only device (tests sign up once).
func (f *fakeAPI) device(t tb) fakeDevice {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.devices) != 1 {
		t.Fatalf("fake API has %d devices, want 1", len(f.devices))
	}
	for _, d := range f.devices {
		return *d
	}
	return fakeDevice{}
}

// endDevices revokes every device session.
func (f *fakeAPI) endDevices() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devices {
		d.ended = true
	}
}

// hijackClose drops the connection without an answer.
func hijackClose(t tb, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("response writer cannot hijack")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	conn.Close()
}

var errSaveFailed = errors.New("disk full")
