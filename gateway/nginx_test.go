package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hallpass/hallpass/gateway"
	"github.com/hallpass/hallpass/internal/nginxtest"
)

// nginxConf is the auth_request configuration of docs/gateway.md, with the
// gateway and the upstream on loopback ports.
const nginxConf = `
    server {
        listen @LISTEN@;

        location = /_hallpass_verify {
            internal;
            proxy_pass http://@GATEWAY@/v1/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
        }

        location / {
            auth_request /_hallpass_verify;
            auth_request_set $hallpass_account $upstream_http_x_hallpass_account;
            auth_request_set $hallpass_device $upstream_http_x_hallpass_device;
            proxy_set_header X-Hallpass-Account $hallpass_account;
            proxy_set_header X-Hallpass-Device $hallpass_device;
            proxy_set_header DPoP "";
            proxy_pass http://@UPSTREAM@;
        }
    }`

// TestNginxAuthRequest drives a real nginx (auth_request to the gateway's
// /v1/verify) in front of an upstream that echoes the headers it receives.
func TestNginxAuthRequest(t *testing.T) {
	up, hits := echoUpstream(t)
	// nginx needs the gateway's address, the gateway nginx's public URL:
	// the handler is set once both run.
	var g atomic.Pointer[gateway.Gateway]
	gwSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := g.Load(); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(gwSrv.Close)
	conf := strings.NewReplacer("@GATEWAY@", strings.TrimPrefix(gwSrv.URL, "http://"), "@UPSTREAM@", strings.TrimPrefix(up.URL, "http://")).Replace(nginxConf)
	ngx := nginxtest.Start(t, conf)
	public := ngx.URL()

	w := newWorld(t, public)
	gw, err := gateway.New(w.auth, gateway.Config{
		PublicURL:      public,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Store(gw)
	alice := w.device(t, "acct_alice", "dev_alice")
	bob := w.device(t, "acct_bob", "dev_bob")
	w.deny.revoke("dev_bob")

	forge := func(h http.Header) {
		h["X-Hallpass-Account"] = []string{"acct_admin"}
		h["x-hallpass-device"] = []string{"dev_forged"}
		h["X_Hallpass_Account"] = []string{"acct_admin"}
	}
	cases := []struct {
		name    string
		method  string
		path    string
		prep    func(t *testing.T, h http.Header)
		status  int
		account string
		device  string
	}{
		{name: "accepted", method: "GET", path: "/api/items?page=2", prep: func(t *testing.T, h http.Header) { alice.sign(t, h, "GET", public+"/api/items") },
			status: 200, account: "acct_alice", device: "dev_alice"},
		{name: "accepted POST", method: "POST", path: "/api/items", prep: func(t *testing.T, h http.Header) { alice.sign(t, h, "POST", public+"/api/items") },
			status: 200, account: "acct_alice", device: "dev_alice"},
		{name: "accepted with forged headers", method: "GET", path: "/api/me", prep: func(t *testing.T, h http.Header) {
			forge(h)
			alice.sign(t, h, "GET", public+"/api/me")
		}, status: 200, account: "acct_alice", device: "dev_alice"},
		{name: "no token", method: "GET", path: "/api/items", prep: func(*testing.T, http.Header) {}, status: 401},
		{name: "no token, forged headers", method: "GET", path: "/api/items", prep: func(_ *testing.T, h http.Header) { forge(h) }, status: 401},
		{name: "bad proof", method: "GET", path: "/api/items", prep: func(t *testing.T, h http.Header) { alice.sign(t, h, "GET", public+"/api/other") }, status: 401},
		{name: "proof for another method", method: "DELETE", path: "/api/items", prep: func(t *testing.T, h http.Header) { alice.sign(t, h, "GET", public+"/api/items") }, status: 401},
		{name: "revoked device", method: "GET", path: "/api/items", prep: func(t *testing.T, h http.Header) { bob.sign(t, h, "GET", public+"/api/items") }, status: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			req, _ := http.NewRequest(tc.method, public+tc.path, strings.NewReader("body"))
			tc.prep(t, req.Header)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body := readAll(t, res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s\n%s", res.StatusCode, tc.status, body, ngx.ErrorLog())
			}
			if tc.status != 200 {
				if hits.Load() != before {
					t.Fatal("a refused request reached the upstream")
				}
				if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "DPoP") {
					t.Fatalf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
				}
				return
			}
			var got http.Header
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if a := got.Values("X-Hallpass-Account"); len(a) != 1 || a[0] != tc.account {
				t.Fatalf("X-Hallpass-Account %q", a)
			}
			if d := got.Values("X-Hallpass-Device"); len(d) != 1 || d[0] != tc.device {
				t.Fatalf("X-Hallpass-Device %q", d)
			}
			for k, v := range got {
				if strings.Contains(strings.Join(v, ","), "admin") || strings.Contains(strings.Join(v, ","), "forged") {
					t.Fatalf("forged header %s: %q reached the upstream", k, v)
				}
			}
			if got.Get("DPoP") != "" {
				t.Fatal("the proof reached the upstream")
			}
			if got.Get("X-Echo-Path") != tc.path || got.Get("X-Echo-Method") != tc.method {
				t.Fatalf("forwarded as %s %s", got.Get("X-Echo-Method"), got.Get("X-Echo-Path"))
			}
		})
	}

	t.Run("replayed through nginx", func(t *testing.T) {
		h := http.Header{}
		alice.sign(t, h, "GET", public+"/api/once")
		for i, want := range []int{200, 401} {
			req, _ := http.NewRequest("GET", public+"/api/once", nil)
			req.Header = h.Clone()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != want {
				t.Fatalf("use %d: %d", i+1, res.StatusCode)
			}
		}
	})
}
