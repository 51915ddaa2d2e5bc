package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/gateway"
)

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu       sync.Mutex
	requests []string // "outcome code"
	auths    []time.Duration
}

func (r *recorder) Request(outcome, code string) {
	r.mu.Lock()
	r.requests = append(r.requests, outcome+" "+code)
	r.mu.Unlock()
}

func (r *recorder) Authenticated(d time.Duration) {
	r.mu.Lock()
	r.auths = append(r.auths, d)
	r.mu.Unlock()
}

func (r *recorder) take() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs, n := r.requests, len(r.auths)
	r.requests, r.auths = nil, nil
	return reqs, n
}

// TestObserver: every answer is reported once, with its outcome and code,
// and every call of the Authenticator is timed.
func TestObserver(t *testing.T) {
	rec := &recorder{}
	gw, w, _ := startGateway(t, gateway.Config{
		Observer:       rec,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	alice := w.device(t, "acct_alice", "dev_alice")
	mallory := w.device(t, "acct_mallory", "dev_mallory")
	w.deny.revoke("dev_mallory")
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL, _ := url.Parse(dead.URL)
	dead.Close() // nothing listens there any more
	badUp, err := gateway.New(w.auth, gateway.Config{PublicURL: gw.URL, Upstream: deadURL, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		handler   http.Handler // nil: the gateway under test
		method    string
		path      string
		prep      func(t *testing.T, h http.Header)
		want      string
		wantAuths int
	}{
		{"allowed", nil, "GET", "/x", func(t *testing.T, h http.Header) { alice.sign(t, h, "GET", gw.URL+"/x") }, "allowed ", 1},
		{"no token", nil, "GET", "/x", nil, "refused invalid_token", 1},
		{"revoked", nil, "GET", "/x", func(t *testing.T, h http.Header) { mallory.sign(t, h, "GET", gw.URL+"/x") }, "refused token_revoked", 1},
		{"repeated header", nil, "GET", "/x", func(t *testing.T, h http.Header) {
			alice.sign(t, h, "GET", gw.URL+"/x")
			h.Add("Authorization", "DPoP x")
		}, "refused invalid_token", 0},
		{"verify allowed", nil, "GET", gateway.DefaultVerifyPath, func(t *testing.T, h http.Header) {
			alice.sign(t, h, "GET", gw.URL+"/api")
			h.Set("X-Forwarded-Method", "GET")
			h.Set("X-Forwarded-Uri", "/api")
		}, "allowed ", 1},
		{"verify bad description", nil, "GET", gateway.DefaultVerifyPath, nil, "refused invalid_request", 0},
		{"verify wrong method", nil, "POST", gateway.DefaultVerifyPath, nil, "refused invalid_request", 0},
		{"upstream down", badUp, "GET", "/x", func(t *testing.T, h http.Header) { alice.sign(t, h, "GET", gw.URL+"/x") }, "error bad_gateway", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, gw.URL+tt.path, nil)
			req.RemoteAddr = "127.0.0.1:5000"
			if tt.prep != nil {
				tt.prep(t, req.Header)
			}
			if tt.handler == nil {
				res, err := http.DefaultClient.Do(clientRequest(t, req))
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
			} else {
				tt.handler.ServeHTTP(httptest.NewRecorder(), req)
			}
			reqs, auths := rec.take()
			if len(reqs) != 1 || reqs[0] != tt.want || auths != tt.wantAuths {
				t.Fatalf("reported %q and %d authentications, want [%q] and %d", reqs, auths, tt.want, tt.wantAuths)
			}
		})
	}
}

// clientRequest turns a server-side request into one a client can send.
func clientRequest(t *testing.T, r *http.Request) *http.Request {
	t.Helper()
	req, err := http.NewRequest(r.Method, r.URL.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.Header
	return req
}
