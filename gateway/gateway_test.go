package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/gateway"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// echoUpstream answers with the request headers it received as JSON.
func echoUpstream(t testing.TB) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		h := r.Header.Clone()
		h.Set("X-Echo-Path", r.URL.RequestURI())
		h.Set("X-Echo-Method", r.Method)
		_ = json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(s.Close)
	return s, hits
}

// startGateway runs a gateway in front of an echo upstream; its public URL
// is its own loopback URL.
func startGateway(t *testing.T, cfg gateway.Config) (gw *httptest.Server, w *world, hits *atomic.Int64) {
	t.Helper()
	up, hits := echoUpstream(t)
	gw = httptest.NewUnstartedServer(nil)
	gw.Start()
	t.Cleanup(gw.Close)
	w = newWorld(t, gw.URL)
	cfg.PublicURL = gw.URL
	cfg.Upstream, _ = url.Parse(up.URL)
	g, err := gateway.New(w.auth, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g
	return gw, w, hits
}

func TestProxy(t *testing.T) {
	gw, w, hits := startGateway(t, gateway.Config{})
	alice := w.device(t, "acct_alice", "dev_alice")
	mallory := w.device(t, "acct_mallory", "dev_mallory")
	w.deny.revoke("dev_mallory")

	type result struct {
		status int
		body   string
		header http.Header
	}
	do := func(t *testing.T, method, path string, prep func(h http.Header)) result {
		t.Helper()
		req, _ := http.NewRequest(method, gw.URL+path, nil)
		// Forged identity headers in every spelling: none may pass.
		req.Header["X-Hallpass-Account"] = []string{"acct_admin"}
		req.Header["x-hallpass-device"] = []string{"dev_forged"}
		req.Header["X_Hallpass_Account"] = []string{"acct_admin"}
		req.Header["X-HALLPASS-ROLE"] = []string{"admin"}
		if prep != nil {
			prep(req.Header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return result{res.StatusCode, readAll(t, res.Body), res.Header}
	}

	t.Run("accepted", func(t *testing.T) {
		before := hits.Load()
		r := do(t, "POST", "/api/items?x=1", func(h http.Header) { alice.sign(t, h, "POST", gw.URL+"/api/items") })
		if r.status != 200 || hits.Load() != before+1 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var got http.Header
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatal(err)
		}
		if got.Get("X-Hallpass-Account") != "acct_alice" || got.Get("X-Hallpass-Device") != "dev_alice" {
			t.Fatalf("identity headers: %v", got)
		}
		if len(got.Values("X-Hallpass-Account")) != 1 || len(got.Values("X-Hallpass-Device")) != 1 {
			t.Fatalf("duplicate identity headers: %v", got)
		}
		for k := range got {
			if lk := strings.ToLower(strings.ReplaceAll(k, "_", "-")); strings.HasPrefix(lk, "x-hallpass-") &&
				k != "X-Hallpass-Account" && k != "X-Hallpass-Device" {
				t.Errorf("forged header %s reached the upstream", k)
			}
		}
		if got.Get("DPoP") != "" {
			t.Error("the DPoP proof was forwarded")
		}
		if got.Get("Authorization") != "DPoP "+alice.token {
			t.Error("Authorization not kept by default")
		}
		if got.Get("X-Echo-Path") != "/api/items?x=1" || got.Get("X-Echo-Method") != "POST" {
			t.Errorf("forwarded as %s %s", got.Get("X-Echo-Method"), got.Get("X-Echo-Path"))
		}
		if got.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", got.Get("X-Forwarded-For"))
		}
	})

	refused := []struct {
		name   string
		method string
		prep   func(t *testing.T, h http.Header)
		code   string
	}{
		{name: "no token", method: "GET", prep: func(*testing.T, http.Header) {}, code: "invalid_token"},
		{name: "token without proof", method: "GET", prep: func(t *testing.T, h http.Header) { h.Set("Authorization", "DPoP "+alice.token) }, code: "invalid_dpop_proof"},
		{name: "proof for another path", method: "GET", prep: func(t *testing.T, h http.Header) { alice.sign(t, h, "GET", gw.URL+"/other") }, code: "invalid_dpop_proof"},
		{name: "proof for another method", method: "DELETE", prep: func(t *testing.T, h http.Header) { alice.sign(t, h, "GET", gw.URL+"/api/items") }, code: "invalid_dpop_proof"},
		{name: "proof of another device", method: "GET", prep: func(t *testing.T, h http.Header) {
			alice.sign(t, h, "GET", gw.URL+"/api/items")
			mallory2 := *mallory
			mallory2.token = alice.token
			p := http.Header{}
			mallory2.sign(t, p, "GET", gw.URL+"/api/items")
			h.Set("DPoP", p.Get("DPoP"))
		}, code: "invalid_dpop_proof"},
		{name: "revoked device", method: "GET", prep: func(t *testing.T, h http.Header) { mallory.sign(t, h, "GET", gw.URL+"/api/items") }, code: "token_revoked"},
		{name: "bearer", method: "GET", prep: func(t *testing.T, h http.Header) { h.Set("Authorization", "Bearer "+alice.token) }, code: "invalid_token"},
		{name: "two Authorization headers", method: "GET", prep: func(t *testing.T, h http.Header) {
			alice.sign(t, h, "GET", gw.URL+"/api/items")
			h.Add("Authorization", "DPoP "+alice.token)
		}, code: "invalid_token"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			r := do(t, tc.method, "/api/items", func(h http.Header) { tc.prep(t, h) })
			if r.status != 401 || hits.Load() != before {
				t.Fatalf("status %d, upstream hits %d: %s", r.status, hits.Load()-before, r.body)
			}
			if r.header.Get("Content-Type") != "application/problem+json" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "DPoP") {
				t.Fatalf("headers %v", r.header)
			}
			var p struct{ Code string }
			_ = json.Unmarshal([]byte(r.body), &p)
			if p.Code != tc.code {
				t.Fatalf("code %q, want %q", p.Code, tc.code)
			}
			if strings.Contains(r.body, alice.token) || strings.Contains(strings.ToLower(r.body), "acct_admin") {
				t.Fatal("the response echoes request content")
			}
		})
	}

	t.Run("replayed proof", func(t *testing.T) {
		h := http.Header{}
		alice.sign(t, h, "GET", gw.URL+"/api/once")
		set := func(x http.Header) {
			x.Set("Authorization", h.Get("Authorization"))
			x.Set("DPoP", h.Get("DPoP"))
		}
		if r := do(t, "GET", "/api/once", set); r.status != 200 {
			t.Fatalf("first use: %d", r.status)
		}
		if r := do(t, "GET", "/api/once", set); r.status != 401 {
			t.Fatalf("replay: %d", r.status)
		}
	})
}

// TestProxyForwardedHeaders: the client's X-Forwarded-* reach the upstream
// only from a trusted proxy.
func TestProxyForwardedHeaders(t *testing.T) {
	for _, tc := range []struct {
		name               string
		trusted            []netip.Prefix
		wantFor, wantProto string
	}{
		{name: "untrusted peer", wantFor: "127.0.0.1", wantProto: "http"},
		{name: "trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, wantFor: "203.0.113.9, 127.0.0.1", wantProto: "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, w, _ := startGateway(t, gateway.Config{TrustedProxies: tc.trusted})
			got := upstreamHeaders(t, gw, w.device(t, "acct_a", "dev_a"), http.Header{
				"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}})
			if got.Get("X-Forwarded-For") != tc.wantFor || got.Get("X-Forwarded-Proto") != tc.wantProto {
				t.Fatalf("X-Forwarded-For %q, -Proto %q", got.Get("X-Forwarded-For"), got.Get("X-Forwarded-Proto"))
			}
		})
	}
}

// TestProxyClientForwardedHeaders: from a peer that is not a trusted proxy
// no X-Forwarded-* or X-Real-IP header of the client reaches the upstream
// (Port, Prefix, Ssl build an upstream's absolute URLs and its idea of
// https; X-Real-IP is the client address by nginx's convention);
// from any peer the '_' spellings are removed, since CGI, PHP, WSGI and
// Rack read X_Forwarded_For as the X-Forwarded-For the gateway sets.
func TestProxyClientForwardedHeaders(t *testing.T) {
	sent := map[string]string{
		"X-Forwarded-Port":   "8443",
		"X-Forwarded-Prefix": "/evil",
		"X-Forwarded-Ssl":    "on",
		"X_Forwarded_For":    "203.0.113.66",
		"x_forwarded_host":   "evil.example",
		"X-FORWARDED_PROTO":  "https",
		"X-Real-Ip":          "203.0.113.67",
		"X_Real_IP":          "203.0.113.68",
		"X-Real-Ipv6":        "kept: not a forwarding header",
	}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		kept    []string // canonical names of the client's headers that must arrive
	}{
		{name: "untrusted peer"},
		{name: "trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			kept: []string{"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Ssl", "X-Real-Ip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, w, _ := startGateway(t, gateway.Config{TrustedProxies: tc.trusted})
			h := http.Header{}
			for k, v := range sent {
				h[k] = []string{v} // as spelled, not canonicalized
			}
			got := upstreamHeaders(t, gw, w.device(t, "acct_a", "dev_a"), h)
			want := map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true}
			for _, k := range tc.kept {
				want[k] = true
				if got.Get(k) != sent[k] {
					t.Errorf("%s from a trusted proxy: %q, want %q", k, got.Get(k), sent[k])
				}
			}
			for k := range got {
				lk := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
				if (strings.HasPrefix(lk, "x-forwarded-") || lk == "x-real-ip") && !want[k] {
					t.Errorf("client header %s: %q reached the upstream", k, got[k])
				}
			}
			if got.Get("X-Real-Ipv6") != sent["X-Real-Ipv6"] {
				t.Errorf("X-Real-Ipv6: %q, want it passed on", got.Get("X-Real-Ipv6"))
			}
			if got.Get("X-Forwarded-For") != "127.0.0.1" || got.Get("X-Forwarded-Proto") != "http" ||
				got.Get("X-Forwarded-Host") != strings.TrimPrefix(gw.URL, "http://") {
				t.Errorf("X-Forwarded-For %q, -Proto %q, -Host %q", got.Get("X-Forwarded-For"), got.Get("X-Forwarded-Proto"), got.Get("X-Forwarded-Host"))
			}
		})
	}
}

func TestProxyStripAuthorization(t *testing.T) {
	gw, w, _ := startGateway(t, gateway.Config{StripAuthorization: true})
	got := upstreamHeaders(t, gw, w.device(t, "acct_a", "dev_a"), nil)
	if got.Get("Authorization") != "" || got.Get("DPoP") != "" || got.Get("X-Hallpass-Account") != "acct_a" {
		t.Fatalf("%v", got)
	}
}

// upstreamHeaders sends GET / through gw with the headers h (as spelled)
// and d's token and proof, and returns the headers the upstream received
// (it echoes them as JSON); anything but a 200 fails the test.
func upstreamHeaders(t *testing.T, gw *httptest.Server, d *device, h http.Header) http.Header {
	t.Helper()
	return upstreamHeadersHost(t, gw, d, h, "")
}

// upstreamHeadersHost is upstreamHeaders with the request's Host header
// set to host ("": the gateway's address).
func upstreamHeadersHost(t *testing.T, gw *httptest.Server, d *device, h http.Header, host string) http.Header {
	t.Helper()
	req, _ := http.NewRequest("GET", gw.URL+"/", nil)
	req.Host = host
	for k, v := range h {
		req.Header[k] = v
	}
	d.sign(t, req.Header, "GET", gw.URL+"/")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got http.Header
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != 200 {
		t.Fatalf("upstream headers: %d: %v", res.StatusCode, err)
	}
	return got
}

func TestProxyUpstreamDown(t *testing.T) {
	gw, w, _ := startGateway(t, gateway.Config{})
	// Point a second gateway at a closed port.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL, _ := url.Parse(dead.URL)
	dead.Close()
	g, err := gateway.New(w.auth, gateway.Config{PublicURL: gw.URL, Upstream: deadURL})
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g
	d := w.device(t, "acct_a", "dev_a")
	req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
	d.sign(t, req.Header, "GET", gw.URL+"/x")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 502 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
}

func TestNoUpstream(t *testing.T) {
	w := newWorld(t, "https://api.example")
	g, err := gateway.New(w.auth, gateway.Config{PublicURL: "https://api.example"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/anything", nil))
	if rec.Code != 404 {
		t.Fatalf("%d", rec.Code)
	}
}

func TestNewConfig(t *testing.T) {
	w := newWorld(t, "https://api.example")
	up, _ := url.Parse("http://127.0.0.1:1")
	cases := []struct {
		name string
		cfg  gateway.Config
		ok   bool
	}{
		{name: "minimal", cfg: gateway.Config{PublicURL: "https://api.example"}, ok: true},
		{name: "full", cfg: gateway.Config{PublicURL: "https://api.example", Upstream: up, Origins: []string{"https://api.example", "https://www.example:8443"},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, VerifyPath: "/auth"}, ok: true},
		{name: "no public URL", cfg: gateway.Config{}},
		{name: "public URL not http", cfg: gateway.Config{PublicURL: "ftp://api.example"}},
		{name: "origin with path", cfg: gateway.Config{PublicURL: "https://api.example", Origins: []string{"https://api.example/x"}}},
		{name: "upstream with query", cfg: gateway.Config{PublicURL: "https://api.example", Upstream: &url.URL{Scheme: "http", Host: "a", RawQuery: "x"}}},
		{name: "relative verify path", cfg: gateway.Config{PublicURL: "https://api.example", VerifyPath: "verify"}},
		{name: "invalid prefix", cfg: gateway.Config{PublicURL: "https://api.example", TrustedProxies: []netip.Prefix{{}}}},
		{name: "every IPv4 address trusted", cfg: gateway.Config{PublicURL: "https://api.example", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}},
		{name: "every IPv6 address trusted", cfg: gateway.Config{PublicURL: "https://api.example", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::/0")}}},
		{name: "every IPv4 address trusted, mapped", cfg: gateway.Config{PublicURL: "https://api.example", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::ffff:0:0/96")}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.New(w.auth, tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if _, err := gateway.New(nil, gateway.Config{PublicURL: "https://api.example"}); err == nil {
		t.Fatal("nil Authenticator accepted")
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{}
	for _, k := range []string{"X-Hallpass-Account", "x-hallpass-device", "X_HALLPASS_ACCOUNT", "X-Hallpass_Device", "X-Hallpass-", "X-HallPass-Anything"} {
		h[k] = []string{"forged"}
	}
	keep := []string{"X-Hallpass", "X-Hallpas-Account", "Authorization", "X-Other-Hallpass-Account"}
	for _, k := range keep {
		h[k] = []string{"v"}
	}
	gateway.StripIdentityHeaders(h)
	if len(h) != len(keep) {
		t.Fatalf("left %v", h)
	}
	for _, k := range keep {
		if h[k] == nil {
			t.Fatalf("removed %s", k)
		}
	}
}

// TestProxyDotSegments: the upstream's base path is not a boundary a
// client can climb out of with "..": the proof's htu is normalised (GET
// /x/../../admin names /admin, which the client may sign), but the path
// went upstream as sent, /api/x/../../admin, which an upstream that
// resolves dot segments serves as /admin, outside /api. A path with a dot
// segment is refused (400 invalid_request) and never reaches the upstream.
func TestProxyDotSegments(t *testing.T) {
	up, hits := echoUpstream(t)
	gw := httptest.NewUnstartedServer(nil)
	gw.Start()
	t.Cleanup(gw.Close)
	w := newWorld(t, gw.URL)
	upstream, _ := url.Parse(up.URL + "/api")
	g, err := gateway.New(w.auth, gateway.Config{PublicURL: gw.URL, Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g
	alice := w.device(t, "acct_alice", "dev_alice")
	for _, tc := range []struct{ path, htu string }{
		{"/x/../../admin", "/admin"},
		{"/x/%2e%2e/%2E%2E/admin", "/admin"},
		{"/./items", "/items"},
	} {
		req, _ := http.NewRequest("GET", gw.URL+tc.path, nil)
		alice.sign(t, req.Header, "GET", gw.URL+tc.htu)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_request") || hits.Load() != 0 {
			t.Fatalf("%s: status %d, %d upstream hits: %s", tc.path, res.StatusCode, hits.Load(), body)
		}
	}
}

// TestProxyHostFromUntrustedPeer: the gateway set X-Forwarded-Host to the
// Host header as the peer sent it, so any client (the proof names the
// public URL, never the Host) made the upstream build its absolute URLs,
// redirects and links on a host of the client's choosing, though a peer's
// forwarded values are kept only from a trusted proxy. From any other peer
// it is now the host of Config.PublicURL; a trusted proxy's Host stands.
func TestProxyHostFromUntrustedPeer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{name: "untrusted peer"},
		{name: "trusted proxy", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, want: "evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, w, _ := startGateway(t, gateway.Config{TrustedProxies: tc.trusted})
			if tc.want == "" {
				tc.want = strings.TrimPrefix(gw.URL, "http://")
			}
			got := upstreamHeadersHost(t, gw, w.device(t, "acct_a", "dev_a"), nil, "evil.example")
			if got.Get("X-Forwarded-Host") != tc.want {
				t.Fatalf("X-Forwarded-Host %q, want %q", got.Get("X-Forwarded-Host"), tc.want)
			}
		})
	}
}

// TestProxyDPoPNonces: with an Authenticator that demands server nonces, a
// proof without one gets 401 use_dpop_nonce with a DPoP-Nonce, a proof
// with it reaches the upstream, and every verified answer carries the next
// nonce (in place of the upstream's own), so the client's next proof
// needs no challenge; the forward-auth 200 carries one too.
func TestProxyDPoPNonces(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(dpop.NonceHeader, "upstream-nonce")
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	gw := httptest.NewUnstartedServer(nil)
	gw.Start()
	t.Cleanup(gw.Close)
	w := newWorld(t, gw.URL)
	nk, err := dpop.GenerateNonceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := dpop.NewNonceSource(nk, dpop.NonceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := httpauth.New(httpauth.Config{Verifier: w.v, PublicURL: gw.URL, Nonces: ns})
	if err != nil {
		t.Fatal(err)
	}
	upstream, _ := url.Parse(up.URL)
	g, err := gateway.New(a, gateway.Config{PublicURL: gw.URL, Upstream: upstream,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g
	d := w.device(t, "acct_alice", "dev_alice")
	send := func(path, nonce string, fwd map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		p, err := dpop.NewProof(d.key, "GET", gw.URL+"/items", d.token, nonce)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "DPoP "+d.token)
		req.Header.Set("DPoP", p)
		for k, v := range fwd {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := send("/items", "", nil)
	n1 := first.Header.Get(dpop.NonceHeader)
	if first.StatusCode != http.StatusUnauthorized || n1 == "" || !strings.Contains(first.Header.Get("WWW-Authenticate"), "use_dpop_nonce") {
		t.Fatalf("proof without a nonce: %d, nonce %q, %q", first.StatusCode, n1, first.Header.Get("WWW-Authenticate"))
	}
	second := send("/items", n1, nil)
	n2 := second.Header.Get(dpop.NonceHeader)
	if second.StatusCode != http.StatusOK || n2 == "" || n2 == "upstream-nonce" || len(second.Header.Values(dpop.NonceHeader)) != 1 {
		t.Fatalf("proof with the nonce: %d, nonces %q", second.StatusCode, second.Header.Values(dpop.NonceHeader))
	}
	if third := send("/items", n2, nil); third.StatusCode != http.StatusOK {
		t.Fatalf("proof with the answer's nonce: %d", third.StatusCode)
	}
	v := send("/v1/verify", n2, map[string]string{"X-Original-Method": "GET", "X-Original-URI": "/items"})
	if v.StatusCode != http.StatusOK || v.Header.Get(dpop.NonceHeader) == "" {
		t.Fatalf("forward auth with the nonce: %d, nonce %q", v.StatusCode, v.Header.Get(dpop.NonceHeader))
	}
}
