package issuer_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/refresh"
)

// clock is a settable test clock that starts at the real time.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time               { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration)      { c.off.Add(int64(d)) }
func (c *clock) ProofOpts() dpop.ProofOptions { return dpop.ProofOptions{Now: c.Now} }

// backend makes the store (and what shares its engine) for one test.
type backend interface {
	name() string
	open(t testing.TB) account.Store
	// reopen returns a store over the same data, as after a restart.
	reopen(t testing.TB, old account.Store) account.Store
	replay(t testing.TB) dpop.ReplayCache
	limiter(t testing.TB) ratelimit.Limiter
}

type boltBackend struct{ path string }

func (b *boltBackend) name() string { return "bolt" }
func (b *boltBackend) open(t testing.TB) account.Store {
	if b.path == "" {
		b.path = filepath.Join(t.TempDir(), "hallpass.db")
	}
	st, err := boltstore.Open(b.path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
func (b *boltBackend) reopen(t testing.TB, old account.Store) account.Store {
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	return b.open(t)
}
func (b *boltBackend) replay(t testing.TB) dpop.ReplayCache {
	c, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
func (b *boltBackend) limiter(t testing.TB) ratelimit.Limiter {
	l, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// env is one issuer under test: its shared state survives restart().
type env struct {
	t       testing.TB
	be      backend
	store   account.Store
	ring    *keys.Ring
	local   *keys.LocalKey
	clock   *clock
	logs    *logbuf.Buffer
	cfg     issuer.Config
	srv     *issuer.Server
	hs      *httptest.Server
	handler atomic.Value // http.Handler of the current Server
	adminHS *httptest.Server
	admin   atomic.Value // http.Handler: AdminHandler of the current Server
	mu      sync.Mutex
	secrets []string // every token and proof seen; must never reach the logs
}

type option func(*issuer.Config)

func newEnv(t testing.TB, be backend, opts ...option) *env {
	t.Helper()
	ring, err := keys.NewRing(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	lk, err := keys.GenerateLocalKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, be: be, ring: ring, local: lk, clock: &clock{}, logs: &logbuf.Buffer{}}
	e.store = be.open(t)
	e.cfg = issuer.Config{
		Store:        e.store,
		Keys:         ring,
		DPoP:         issuer.DPoPConfig{Replay: be.replay(t)},
		Logger:       slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          e.clock.Now,
		Pepper:       flow.StaticPepper{randomBytes(e.t, 32)},
		StoreTimeout: 30 * time.Second, // generous: -race on two busy cores (80 concurrent bbolt fsyncs); TestRedisDown sets its own
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	// Tests without a limiter of their own run without budgets, and say so.
	e.cfg.SignupLimitsOff = e.cfg.Limiter == nil
	e.start()
	t.Cleanup(e.checkLogs)
	return e
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// start builds a Server on the env's shared state and serves it. The
// listener (and so the public URL) lives as long as the env: a restart
// swaps in a new Server behind the same URL, as a process restart behind
// one name would.
func (e *env) start() {
	e.t.Helper()
	if e.hs == nil {
		e.hs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.handler.Load().(http.Handler).ServeHTTP(w, r)
		}))
		e.t.Cleanup(e.hs.Close)
	}
	cfg := e.cfg
	cfg.PublicURL = e.hs.URL
	cfg.Store = e.store
	cfg.Registry = prometheus.NewRegistry()
	codec, err := refresh.NewCodec(e.clock.Now, e.local)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.Refresh = codec
	srv, err := issuer.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.handler.Store(srv.Handler())
	e.admin.Store(srv.AdminHandler())
	if e.adminHS == nil {
		e.adminHS = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.admin.Load().(http.Handler).ServeHTTP(w, r)
		}))
		e.t.Cleanup(e.adminHS.Close)
	}
	e.srv = srv
}

// restart stops the HTTP server, reopens the store over the same data and
// starts a new Server (new process, same key ring and data).
func (e *env) restart() {
	e.t.Helper()
	e.hs.CloseClientConnections()
	e.hs.Client().Transport.(*http.Transport).CloseIdleConnections()
	e.store = e.be.reopen(e.t, e.store)
	e.start()
}

func (e *env) url(path string) string { return e.hs.URL + path }

func (e *env) remember(s ...string) {
	if _, bench := e.t.(*testing.B); bench {
		return // benchmarks make too many to keep; the tests check the logs
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range s {
		if len(x) >= 16 {
			e.secrets = append(e.secrets, x)
		}
	}
}

// checkLogs fails if any token, proof or refresh token (or a long part of
// one) appears in the logs.
func (e *env) checkLogs() {
	logs := e.logs.String()
	// Every run of base64url characters in the logs; a logged token or
	// proof would show its dot-separated parts as such runs.
	runs := make(map[string]bool)
	for _, r := range strings.FieldsFunc(logs, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	}) {
		if len(r) >= 24 {
			runs[r] = true
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	substring := len(e.secrets) < 5000 // the exhaustive check, while it is cheap
	for _, s := range e.secrets {
		for _, part := range secretParts(s) {
			if runs[part] || substring && strings.Contains(logs, part) {
				e.t.Errorf("logs contain a credential fragment (%d bytes)", len(part))
				return
			}
		}
	}
}

// secretParts splits a token or proof at dots and keeps the parts long
// enough to be meaningful.
func secretParts(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ".") {
		if len(p) >= 24 {
			out = append(out, p)
		}
	}
	return out
}

// device is a client with its own device key.
type device struct {
	e      *env
	key    crypto.Signer
	nonce  string
	access string
	rt     string
	accID  string
	devID  string
}

func (e *env) newDevice(alg string) *device {
	e.t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return &device{e: e, key: k}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d: body is not JSON: %q", r.status, r.body)
	}
	return m
}

func (r resp) str(t testing.TB, k string) string {
	t.Helper()
	v, _ := r.json(t)[k].(string)
	return v
}

// code is the problem code of an error response.
func (r resp) code(t testing.TB) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d: content type %q, want application/problem+json; body %q", r.status, ct, r.body)
	}
	return r.str(t, "code")
}

func (e *env) do(req *http.Request) resp {
	e.t.Helper()
	res, err := e.hs.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, body: b}
	if r.status >= 200 && r.status < 300 && len(b) > 0 && b[0] == '{' {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			for _, k := range []string{"access_token", "refresh_token"} {
				if s, ok := m[k].(string); ok {
					e.remember(s)
				}
			}
		}
	}
	return r
}

// proof makes a proof for method and path (token may be "").
func (d *device) proof(method, path, token string) string {
	d.e.t.Helper()
	p, err := dpop.NewProofWithOptions(d.key, method, d.e.url(path), token, d.nonce, d.e.clock.ProofOpts())
	if err != nil {
		d.e.t.Fatal(err)
	}
	d.e.remember(p)
	return p
}

func (d *device) signupReq(username string) *http.Request {
	body, _ := json.Marshal(map[string]string{"username": username, "device_name": "test phone"})
	req, _ := http.NewRequest(http.MethodPost, d.e.url(issuer.PathAccounts), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", d.proof(http.MethodPost, issuer.PathAccounts, ""))
	return req
}

// signup creates an account and keeps its tokens; it fails the test unless
// the answer is 201.
func (d *device) signup(username string) resp {
	d.e.t.Helper()
	r := d.e.do(d.signupReq(username))
	if r.status != http.StatusCreated {
		d.e.t.Fatalf("signup: status %d, body %s", r.status, r.body)
	}
	d.access, d.rt = r.str(d.e.t, "access_token"), r.str(d.e.t, "refresh_token")
	d.accID, d.devID = r.str(d.e.t, "account_id"), r.str(d.e.t, "device_id")
	return r
}

func (d *device) refreshReq(rt string) *http.Request {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, _ := http.NewRequest(http.MethodPost, d.e.url(issuer.PathToken), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", d.proof(http.MethodPost, issuer.PathToken, ""))
	return req
}

// refreshWith presents rt and returns the raw response.
func (d *device) refreshWith(rt string) resp {
	return d.e.do(d.refreshReq(rt))
}

// refresh rotates the device's tokens; it fails the test unless 200.
func (d *device) refresh() resp {
	d.e.t.Helper()
	r := d.refreshWith(d.rt)
	if r.status != http.StatusOK {
		d.e.t.Fatalf("refresh: status %d, body %s", r.status, r.body)
	}
	d.access, d.rt = r.str(d.e.t, "access_token"), r.str(d.e.t, "refresh_token")
	return r
}

func (d *device) authReq(method, path, token string) *http.Request {
	req, _ := http.NewRequest(method, d.e.url(path), nil)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", d.proof(method, path, token))
	return req
}

func (d *device) me() resp { return d.e.do(d.authReq(http.MethodGet, issuer.PathMe, d.access)) }

func (d *device) logout() resp {
	return d.e.do(d.authReq(http.MethodPost, issuer.PathLogout, d.access))
}

func containsLog(e *env, s string) bool { return strings.Contains(e.logs.String(), s) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// scrape fetches /metrics from the current Server's MetricsHandler (the
// public handler has no /metrics).
func scrape(t testing.TB, e *env) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, issuer.PathMetrics, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustCodec(t testing.TB, e *env) *refresh.Codec {
	t.Helper()
	c, err := refresh.NewCodec(e.clock.Now, e.local)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
