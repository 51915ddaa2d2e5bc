package issuer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/verifier"
)

// TestRedisDown: with Redis stopped, signup and refresh answer 503
// problem+json within the store timeout, leave nothing behind, and work
// again once Redis is back, without a restart of the issuer.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	be := &redisBackend{}
	e := newEnv(t, be, func(c *issuer.Config) { c.StoreTimeout = 300 * time.Millisecond })
	d := e.newDevice("EdDSA")
	d.signup("before_outage")
	checkMe(t, d)

	be.srv.Stop(t)
	check503 := func(what string, r resp, took time.Duration) {
		t.Helper()
		if r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" {
			t.Fatalf("%s with Redis down: %d %s", what, r.status, r.body)
		}
		p := r.json(t)
		if p["request_id"] == nil || p["request_id"] != r.header.Get("X-Request-Id") {
			t.Errorf("%s: 503 without the request id: %s", what, r.body)
		}
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", what)
		}
		// Store timeout, plus the replay cache's own bounded call, plus
		// slack for the race detector.
		if took > 2*time.Second {
			t.Errorf("%s took %v with Redis down", what, took)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd := e.newDevice("EdDSA")
			start := time.Now()
			r := e.do(nd.signupReq("during_outage"))
			check503("signup", r, time.Since(start))
			_ = i
		}()
	}
	wg.Wait()
	start := time.Now()
	check503("refresh", d.refreshWith(d.rt), time.Since(start))
	start = time.Now()
	check503("/v1/me", d.me(), time.Since(start))
	req, _ := http.NewRequest(http.MethodGet, e.url(issuer.PathReadyz), nil)
	if r := e.do(req); r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %d", r.status)
	}
	req, _ = http.NewRequest(http.MethodGet, e.url(issuer.PathHealthz), nil)
	if r := e.do(req); r.status != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %d", r.status)
	}

	be.srv.Restart(t) // a fresh, empty Redis on the same address
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, e.url(issuer.PathReadyz), nil)
		if r := e.do(req); r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Nothing of the failed signups exists.
	if _, err := e.store.GetAccountByUsername(context.Background(), "during_outage"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("account from a failed signup: %v", err)
	}
	nd := e.newDevice("ES256")
	nd.signup("during_outage")
	checkMe(t, nd)
	nd.refresh()
	checkMe(t, nd)
}

// TestBoltClosed: a store that fails (closed file) is 503, never 500.
func TestBoltClosed(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("closer")
	e.store.Close()
	if r := e.do(e.newDevice("EdDSA").signupReq("after_close")); r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" {
		t.Fatalf("signup on a closed store: %d %s", r.status, r.body)
	}
	if r := d.refreshWith(d.rt); r.status != http.StatusServiceUnavailable {
		t.Fatalf("refresh on a closed store: %d %s", r.status, r.body)
	}
}

// TestDPoPNonce: with nonces demanded, signup and refresh first get 400
// use_dpop_nonce with a DPoP-Nonce header, then succeed with it.
func TestDPoPNonce(t *testing.T) {
	nk, err := dpop.GenerateNonceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var e *env
	e = newEnv(t, &boltBackend{}, func(c *issuer.Config) {
		ns, err := dpop.NewNonceSource(nk, dpop.NonceOptions{Now: func() time.Time { return e.clock.Now() }})
		if err != nil {
			t.Fatal(err)
		}
		c.DPoP.Nonces = ns
	})
	d := e.newDevice("EdDSA")
	r := e.do(d.signupReq("noncer"))
	if r.status != http.StatusBadRequest || r.code(t) != "use_dpop_nonce" || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("signup without nonce: %d %s %v", r.status, r.body, r.header)
	}
	d.nonce = r.header.Get("DPoP-Nonce")
	r = d.signup("noncer")
	if r.header.Get("DPoP-Nonce") == "" {
		t.Error("no DPoP-Nonce on a successful signup")
	}
	d.nonce = "bogus"
	r = d.refreshWith(d.rt)
	if r.status != http.StatusBadRequest || r.code(t) != "use_dpop_nonce" {
		t.Fatalf("refresh with a bad nonce: %d %s", r.status, r.body)
	}
	d.nonce = r.header.Get("DPoP-Nonce")
	d.refresh()
	// Resource requests do not demand nonces.
	d.nonce = ""
	checkMe(t, d)
}

// TestOpsEndpoints: key set, health, readiness, OpenAPI on the public
// handler; metrics only on MetricsHandler.
func TestOpsEndpoints(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("opsuser")
	d.refresh()
	checkMe(t, d)

	get := func(path string) resp {
		req, _ := http.NewRequest(http.MethodGet, e.url(path), nil)
		return e.do(req)
	}
	r := get(issuer.PathKeys)
	if r.status != 200 || r.header.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("keys: %d %v", r.status, r.header)
	}
	var ks keys.KeySetDocument
	if err := json.Unmarshal(r.body, &ks); err != nil || ks.Issuer != e.hs.URL || len(ks.Keys) != 2 {
		t.Fatalf("key set %s: %v", r.body, err)
	}
	if strings.Contains(string(r.body), "k4.secret") {
		t.Fatal("key set leaks a secret key")
	}
	if r := get(issuer.PathHealthz); r.status != 200 || r.str(t, "status") != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	if r := get(issuer.PathReadyz); r.status != 200 || r.str(t, "status") != "ready" {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	r = get(issuer.PathOpenAPI)
	if r.status != 200 || !strings.HasPrefix(string(r.body), "openapi: 3.1") {
		t.Fatalf("openapi: %d", r.status)
	}
	// Metrics are not on the public handler (they tell anyone the signup
	// volume and every refusal counter); MetricsHandler serves them.
	if r := get(issuer.PathMetrics); r.status != http.StatusNotFound {
		t.Fatalf("public /metrics: %d", r.status)
	}
	m := scrape(t, e)
	for _, want := range []string{
		`hallpass_http_requests_total{code="201",method="POST",route="/v1/accounts"} 1`,
		`hallpass_http_requests_total{code="200",method="GET",route="/v1/me"} 1`,
		`hallpass_signups_total 1`,
		`hallpass_refreshes_total{outcome="advanced"} 1`,
		`hallpass_refresh_reuse_detected_total 0`,
		`hallpass_store_operation_duration_seconds_count{op="create_account"} 1`,
		`hallpass_store_operation_duration_seconds_count{op="refresh"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The access log: allow-listed fields only.
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	for k := range line {
		switch k {
		case "time", "level", "msg", "method", "route", "status", "duration", "request_id", "client_ip":
		default:
			t.Errorf("access log has field %q", k)
		}
	}
	if line["client_ip"] != "127.0.0.1" {
		t.Errorf("client_ip %v", line["client_ip"])
	}
}

// TestTrustedProxies: X-Forwarded-For counts only from a trusted peer.
func TestTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		xff     string
		want    string
	}{
		{"no trusted proxies", nil, "203.0.113.7", "127.0.0.1"},
		{"trusted loopback", []string{"127.0.0.0/8"}, "203.0.113.7", "203.0.113.7"},
		{"trusted chain", []string{"127.0.0.0/8", "10.0.0.0/8"}, "198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7"},
		{"untrusted peer", []string{"10.0.0.0/8"}, "203.0.113.7", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, &boltBackend{}, func(c *issuer.Config) {
				for _, p := range tc.trusted {
					c.TrustedProxies = append(c.TrustedProxies, mustPrefix(t, p))
				}
			})
			req, _ := http.NewRequest(http.MethodGet, e.url(issuer.PathHealthz), nil)
			req.Header.Set("X-Forwarded-For", tc.xff)
			e.do(req)
			if !strings.Contains(e.logs.String(), `"client_ip":"`+tc.want+`"`) {
				t.Fatalf("want client_ip %s in %s", tc.want, e.logs.String())
			}
		})
	}
}

// stuckStore ignores contexts and blocks until released, like a disk that
// stalls in fsync.
type stuckStore struct {
	account.Store
	release chan struct{}
}

func (s *stuckStore) CreateAccount(ctx context.Context, a account.Account, d account.Device, se account.Session) error {
	<-s.release
	return s.Store.CreateAccount(context.Background(), a, d, se)
}

func (s *stuckStore) Refresh(ctx context.Context, req account.RefreshRequest) (account.RefreshResult, error) {
	<-s.release
	return s.Store.Refresh(context.Background(), req)
}

// TestStuckStore: a store that does not honour its context still gives a
// 503 within the store timeout; the abandoned step completes atomically
// later, and the client's retry of the refresh within grace gets the pair.
func TestStuckStore(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("stuck")
	stuck := &stuckStore{Store: e.store, release: make(chan struct{})}
	released := false
	t.Cleanup(func() {
		if !released {
			close(stuck.release)
		}
	})
	e.cfg.StoreTimeout = 200 * time.Millisecond
	e.cfg.Store = stuck
	e.store = stuck
	e.start()

	start := time.Now()
	r := d.refreshWith(d.rt)
	if r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" {
		t.Fatalf("refresh on a stuck store: %d %s", r.status, r.body)
	}
	r2 := e.do(e.newDevice("EdDSA").signupReq("stuck2"))
	if r2.status != http.StatusServiceUnavailable {
		t.Fatalf("signup on a stuck store: %d %s", r2.status, r2.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
	close(stuck.release)
	released = true
	d.refresh() // the abandoned refresh advanced; this retry is within grace
	checkMe(t, d)
}

// TestKeyRotation: after a rotation, tokens of the retired key still
// verify and new tokens use the new key; after a revocation, tokens of the
// revoked key are token_revoked.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("rotator")
	oldKid := e.ring.Current().ID()
	oldAccess := d.access
	if err := e.ring.Rotate(nil, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	checkMe(t, d) // retired key: still valid
	d.refresh()
	if d.access == oldAccess {
		t.Fatal("no new token")
	}
	checkMe(t, d)
	if err := e.ring.Revoke(oldKid, nil, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r := e.do(d.authReq(http.MethodGet, issuer.PathMe, oldAccess))
	if r.status != http.StatusUnauthorized || r.code(t) != "token_revoked" {
		t.Fatalf("token of a revoked key: %d %s", r.status, r.body)
	}
	checkMe(t, d)
}

// TestBearerAllowed: the policy switch lets /v1/me take a bound token
// without a proof; off by default (see TestBadInput).
func TestBearerAllowed(t *testing.T) {
	e := newEnv(t, &boltBackend{}, func(c *issuer.Config) { c.BearerAllowed = true })
	d := e.newDevice("EdDSA")
	d.signup("bearer")
	req, _ := http.NewRequest(http.MethodGet, e.url(issuer.PathMe), nil)
	req.Header.Set("Authorization", "Bearer "+d.access)
	if r := e.do(req); r.status != http.StatusOK || r.str(t, "device_id") != d.devID {
		t.Fatalf("bearer: %d %s", r.status, r.body)
	}
	checkMe(t, d) // DPoP still works
	// Signup still needs a proof.
	req = d.signupReq("bearer2")
	req.Header.Del("DPoP")
	if r := e.do(req); r.status != http.StatusBadRequest || r.code(t) != "invalid_dpop_proof" {
		t.Fatalf("signup without proof: %d %s", r.status, r.body)
	}
}

// TestConfigValidation: New refuses unusable configurations.
func TestConfigValidation(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	base := e.cfg
	base.PublicURL = e.hs.URL
	codecCfg := func(c *issuer.Config) {
		c.Refresh = mustCodec(t, e)
	}
	for _, tc := range []struct {
		name string
		mod  func(c *issuer.Config)
	}{
		{"no public URL", func(c *issuer.Config) { c.PublicURL = "" }},
		{"public URL with query", func(c *issuer.Config) { c.PublicURL = "https://id.example?x=1" }},
		{"public URL with user", func(c *issuer.Config) { c.PublicURL = "https://u:p@id.example" }},
		{"public URL not http", func(c *issuer.Config) { c.PublicURL = "ftp://id.example" }},
		{"plain http on a public host", func(c *issuer.Config) { c.PublicURL = "http://id.example" }},
		{"no store", func(c *issuer.Config) { c.Store = nil }},
		{"no keys", func(c *issuer.Config) { c.Keys = nil }},
		{"no codec", func(c *issuer.Config) { c.Refresh = nil }},
		{"no replay cache", func(c *issuer.Config) { c.DPoP.Replay = nil }},
		{"access TTL too long", func(c *issuer.Config) { c.AccessTTL = 2 * time.Hour }},
		{"access TTL too short", func(c *issuer.Config) { c.AccessTTL = 30 * time.Second }},
		{"grace over half the access TTL", func(c *issuer.Config) { c.RefreshGrace = 6 * time.Minute }},
		{"idle over absolute", func(c *issuer.Config) { c.RefreshIdle = 100 * 24 * time.Hour }},
		{"negative token cache", func(c *issuer.Config) { c.TokenCache = -1 }},
		{"token cache too large", func(c *issuer.Config) { c.TokenCache = verifier.MaxTokenCacheEntries + 1 }},
		{"bad rule", func(c *issuer.Config) {
			c.Limiter, _ = ratelimit.NewMemory(ratelimit.MemoryOptions{})
			c.SignupLimitsOff = false
			c.SignupPerIP = ratelimit.Rule{Limit: -1, Per: time.Hour}
		}},
		// Issue 11, finding 9: a nil Limiter silently meant no signup limits.
		{"nil limiter, limits not turned off by name", func(c *issuer.Config) { c.Limiter, c.SignupLimitsOff = nil, false }},
		// A prefix of every address made each client's own X-Forwarded-For
		// the client address: a new budget on every request.
		{"trusted proxies 0.0.0.0/0", func(c *issuer.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }},
		{"trusted proxies ::/0", func(c *issuer.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::/0")}
		}},
		{"trusted proxies ::ffff:0:0/96", func(c *issuer.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("::ffff:0:0/96")} }},
		{"limits off with a limiter", func(c *issuer.Config) {
			c.Limiter, _ = ratelimit.NewMemory(ratelimit.MemoryOptions{})
			c.SignupLimitsOff = true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			codecCfg(&cfg)
			tc.mod(&cfg)
			if _, err := issuer.New(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	cfg := base
	codecCfg(&cfg)
	cfg.PublicURL = "https://id.example/auth/"
	srv, err := issuer.New(cfg)
	if err != nil || srv.PublicURL() != "https://id.example/auth" {
		t.Fatalf("%v %v", srv, err)
	}
}
