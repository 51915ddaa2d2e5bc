package client_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// TestHTTPClientCallsYourService: the client's *http.Client calls a
// service of a configured origin that verifies hallpass tokens with
// httpauth (and demands its own DPoP nonces); a request for any other
// origin is refused before anything is sent. Reproduction before: Do
// refused every URL but the issuer's.
func TestHTTPClientCallsYourService(t *testing.T) {
	ri := startIssuer(t)
	svc := startService(t, ri)
	var strangerHits atomic.Int64
	stranger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { strangerHits.Add(1) }))
	defer stranger.Close()

	c := ri.client(t, client.ES256, &client.MemoryStore{}, client.WithOrigins(svc.URL))
	if _, err := c.Signup(context.Background(), "caller", "phone"); err != nil {
		t.Fatal(err)
	}
	hc := c.HTTPClient()
	for i := range 2 { // the first meets the service's nonce challenge
		resp, err := hc.Get(svc.URL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "hello "+mustState(t, c).AccountID {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if _, err := hc.Get(stranger.URL + "/steal"); !errors.Is(err, client.ErrOtherOrigin) {
		t.Fatalf("another origin: %v, want ErrOtherOrigin", err)
	}
	if strangerHits.Load() != 0 {
		t.Fatal("a request reached an origin that was not configured")
	}
	if _, err := client.New(ri.URL, mustKey(t), &client.MemoryStore{}, client.WithOrigins("https://api.example/path")); err == nil {
		t.Fatal("WithOrigins accepted a URL with a path")
	}
}

// startService runs an httpauth-protected service that trusts ri's key
// set and demands DPoP nonces of its own.
func startService(t *testing.T, ri *realIssuer) *httptest.Server {
	t.Helper()
	resp, err := http.Get(ri.URL + "/.well-known/hallpass/keys")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ks, err := verifier.ParseKeySet(doc, ri.URL)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(ks, ri.URL, ri.URL, verifier.WithClock(ri.clock.Now))
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
	svc := httptest.NewServer(nil)
	t.Cleanup(svc.Close)
	auth, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: svc.URL, Nonces: nonces, Now: ri.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc.Config.Handler = auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := httpauth.ClaimsFromContext(r.Context())
		io.WriteString(w, "hello "+c.Subject)
	}))
	return svc
}

func mustState(t *testing.T, c *client.Client) *client.Session {
	t.Helper()
	s, err := c.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := client.GenerateDeviceKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
