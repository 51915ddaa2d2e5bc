package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/hallpass/hallpass/gateway"
)

func newVerifyGateway(t testing.TB, cfg gateway.Config) (*gateway.Gateway, *world) {
	t.Helper()
	w := newWorld(t, "https://api.example")
	cfg.PublicURL = "https://api.example"
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}
	g, err := gateway.New(w.auth, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, w
}

func TestVerify(t *testing.T) {
	g, w := newVerifyGateway(t, gateway.Config{Origins: []string{"https://api.example", "https://www.example:8443"}})
	alice := w.device(t, "acct_alice", "dev_alice")
	bob := w.device(t, "acct_bob", "dev_bob")
	w.deny.revoke("dev_bob")

	nginx := func(method, uri string) map[string]string {
		return map[string]string{"X-Original-Method": method, "X-Original-URI": uri}
	}
	traefik := func(method, proto, host, uri string) map[string]string {
		return map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Proto": proto, "X-Forwarded-Host": host, "X-Forwarded-Uri": uri}
	}
	cases := []struct {
		name     string
		peer     string
		method   string // of the verify request
		fwd      map[string]string
		signed   *device
		signFor  [2]string // method, URL of the proof
		extra    map[string][]string
		status   int
		code     string
		identity string
	}{
		{name: "nginx accepted", fwd: nginx("GET", "/api/items?x=1"), signed: alice, signFor: [2]string{"GET", "https://api.example/api/items"}, status: 200, identity: "acct_alice"},
		{name: "traefik accepted", fwd: traefik("POST", "https", "api.example", "/api/items"), signed: alice, signFor: [2]string{"POST", "https://api.example/api/items"}, status: 200, identity: "acct_alice"},
		{name: "traefik default port", fwd: traefik("GET", "https", "API.example:443", "/a"), signed: alice, signFor: [2]string{"GET", "https://api.example/a"}, status: 200, identity: "acct_alice"},
		{name: "second origin", fwd: traefik("GET", "https", "www.example:8443", "/a"), signed: alice, signFor: [2]string{"GET", "https://www.example:8443/a"}, status: 200, identity: "acct_alice"},
		{name: "HEAD verify request", method: "HEAD", fwd: nginx("GET", "/a"), signed: alice, signFor: [2]string{"GET", "https://api.example/a"}, status: 200, identity: "acct_alice"},
		{name: "both styles agree", fwd: map[string]string{"X-Original-Method": "GET", "X-Forwarded-Method": "GET", "X-Original-URI": "/a"}, signed: alice, signFor: [2]string{"GET", "https://api.example/a"}, status: 200, identity: "acct_alice"},
		{name: "forged identity ignored", fwd: nginx("GET", "/a"), signed: alice, signFor: [2]string{"GET", "https://api.example/a"},
			extra: map[string][]string{"X-Hallpass-Account": {"acct_admin"}}, status: 200, identity: "acct_alice"},

		{name: "untrusted peer", peer: "192.0.2.1:1234", fwd: nginx("GET", "/a"), signed: alice, signFor: [2]string{"GET", "https://api.example/a"}, status: 403, code: "forbidden"},
		{name: "no token", fwd: nginx("GET", "/a"), status: 401, code: "invalid_token"},
		{name: "revoked", fwd: nginx("GET", "/a"), signed: bob, signFor: [2]string{"GET", "https://api.example/a"}, status: 401, code: "token_revoked"},
		{name: "proof for another method", fwd: nginx("POST", "/a"), signed: alice, signFor: [2]string{"GET", "https://api.example/a"}, status: 401, code: "invalid_dpop_proof"},
		{name: "proof for another path", fwd: nginx("GET", "/b"), signed: alice, signFor: [2]string{"GET", "https://api.example/a"}, status: 401, code: "invalid_dpop_proof"},
		{name: "proof for the verify endpoint", fwd: nginx("GET", "/a"), signed: alice, signFor: [2]string{"GET", "https://api.example/v1/verify"}, status: 401, code: "invalid_dpop_proof"},
		{name: "unknown origin", fwd: traefik("GET", "https", "evil.example", "/a"), signed: alice, signFor: [2]string{"GET", "https://evil.example/a"}, status: 400, code: "invalid_request"},
		{name: "http origin", fwd: traefik("GET", "http", "api.example", "/a"), signed: alice, signFor: [2]string{"GET", "http://api.example/a"}, status: 400, code: "invalid_request"},
		{name: "host list", fwd: traefik("GET", "https", "api.example, evil.example", "/a"), signed: alice, signFor: [2]string{"GET", "https://api.example/a"}, status: 400, code: "invalid_request"},
		{name: "no method", fwd: map[string]string{"X-Original-URI": "/a"}, status: 400, code: "invalid_request"},
		{name: "no uri", fwd: map[string]string{"X-Original-Method": "GET"}, status: 400, code: "invalid_request"},
		{name: "absolute uri", fwd: nginx("GET", "https://evil.example/a"), status: 400, code: "invalid_request"},
		{name: "uri with space", fwd: nginx("GET", "/a b"), status: 400, code: "invalid_request"},
		{name: "bad method", fwd: nginx("G T", "/a"), status: 400, code: "invalid_request"},
		{name: "styles disagree", fwd: map[string]string{"X-Original-Method": "GET", "X-Forwarded-Method": "POST", "X-Original-URI": "/a"}, status: 400, code: "invalid_request"},
		{name: "two uris", fwd: nginx("GET", "/a"), extra: map[string][]string{"X-Original-Uri": {"/a", "/b"}}, status: 400, code: "invalid_request"},
		{name: "POST verify request", method: "POST", fwd: nginx("GET", "/a"), status: 405, code: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.method
			if m == "" {
				m = "GET"
			}
			r := httptest.NewRequest(m, "http://gateway.internal/v1/verify", nil)
			r.RemoteAddr = tc.peer
			if r.RemoteAddr == "" {
				r.RemoteAddr = "10.1.2.3:5555"
			}
			for k, v := range tc.fwd {
				r.Header.Set(k, v)
			}
			for k, v := range tc.extra {
				r.Header[k] = v
			}
			if tc.signed != nil {
				tc.signed.sign(t, r.Header, tc.signFor[0], tc.signFor[1])
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 {
				if rec.Header().Get("X-Hallpass-Account") != tc.identity || rec.Header().Get("X-Hallpass-Device") == "" {
					t.Fatalf("identity %v", rec.Header())
				}
				return
			}
			if rec.Header().Get("X-Hallpass-Account") != "" {
				t.Fatal("identity header on a refusal")
			}
			if m == "HEAD" {
				return
			}
			var p struct{ Code string }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != tc.code {
				t.Fatalf("code %q (%v), want %q: %s", p.Code, err, tc.code, rec.Body)
			}
			if tc.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

// TestVerifyNoTrustedProxies: without configured proxies the endpoint
// refuses everyone, loopback included.
func TestVerifyNoTrustedProxies(t *testing.T) {
	g, w := newVerifyGateway(t, gateway.Config{TrustedProxies: []netip.Prefix{}})
	d := w.device(t, "acct_a", "dev_a")
	r := httptest.NewRequest("GET", "/v1/verify", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Original-URI", "/a")
	d.sign(t, r.Header, "GET", "https://api.example/a")
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, r)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("%d", rec.Code)
	}
}

// FuzzVerifyHeaders: whatever a trusted proxy forwards, the endpoint
// answers 200 only for a valid proof and never panics.
func FuzzVerifyHeaders(f *testing.F) {
	f.Add("GET", "/a", "https", "api.example", "")
	f.Add("POST", "/a?b=c,d", "", "", "GET")
	f.Add("GET", "//evil.example/a", "https", "api.example:443", "")
	f.Add("GET", "/a", "HTTPS", "[::1]:443", "")
	g, _ := newVerifyGateway(f, gateway.Config{})
	f.Fuzz(func(t *testing.T, method, uri, proto, host, origMethod string) {
		r := httptest.NewRequest("GET", "/v1/verify", nil)
		r.RemoteAddr = "10.0.0.1:1"
		for k, v := range map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Uri": uri, "X-Forwarded-Proto": proto, "X-Forwarded-Host": host, "X-Original-Method": origMethod} {
			if v != "" {
				r.Header[k] = []string{v}
			}
		}
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, r)
		if rec.Code == 200 {
			t.Fatal("accepted without credentials")
		}
	})
}

// TestVerifyMappedTrustedProxy: a trusted prefix written IPv4-mapped
// (::ffff:10.0.0.0/104) names the IPv4 proxies it spells. Peers are
// matched unmapped, so it matched none: the proxy's verify requests were
// refused (403), and the headers it forwards were dropped.
func TestVerifyMappedTrustedProxy(t *testing.T) {
	g, w := newVerifyGateway(t, gateway.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}})
	alice := w.device(t, "acct_alice", "dev_alice")
	for _, peer := range []string{"10.1.2.3:5555", "[::ffff:10.1.2.3]:5555"} {
		r := httptest.NewRequest("GET", "http://gateway.internal/v1/verify", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Original-Method", "GET")
		r.Header.Set("X-Original-URI", "/a")
		alice.sign(t, r.Header, "GET", "https://api.example/a")
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Fatalf("peer %s: status %d, want 200: %s", peer, rec.Code, rec.Body)
		}
	}
}
