package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/dpop"
)

// TestGatewayDPoPNonce: `hallpass gateway --dpop-nonce` demands DPoP server
// nonces of the requests it verifies. A proof without one gets 401
// use_dpop_nonce with a DPoP-Nonce; the Go client answers the challenge
// by itself and then keeps up with the nonce each answer carries, so its
// later calls need no second challenge.
func TestGatewayDPoPNonce(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	up := echoHeaders(t)
	gw, _ := startGatewayCmd(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL, "--dpop-nonce")

	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "nonceuser")
	st, h, body := d.call(t, nil, "GET", gw, "/api/items", nil)
	if st != http.StatusUnauthorized || h.Get(dpop.NonceHeader) == "" || !strings.Contains(h.Get("WWW-Authenticate"), "use_dpop_nonce") {
		t.Fatalf("proof without a nonce: %d %v %s", st, h, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingTransport{rt: http.DefaultTransport}
	c, err := client.New(rs.url, key, &client.MemoryStore{}, client.WithHTTPClient(&http.Client{Transport: counting}), client.WithOrigins(gw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Signup(ctx, "nonceclient", "test"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/api/items", nil)
		res, err := c.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get(dpop.NonceHeader) == "" {
			t.Fatalf("call %d through the gateway: %d, DPoP-Nonce %q", i, res.StatusCode, res.Header.Get(dpop.NonceHeader))
		}
	}
	if n := counting.count(gw); n != 4 {
		t.Fatalf("%d requests reached the gateway for 3 calls, want 4 (one nonce challenge)", n)
	}
}

// countingTransport counts the requests it carries to each origin.
type countingTransport struct {
	rt http.RoundTripper
	mu sync.Mutex
	n  map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.URL.Scheme+"://"+r.URL.Host]++
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

func (c *countingTransport) count(origin string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[origin]
}
