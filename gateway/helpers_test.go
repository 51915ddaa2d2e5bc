package gateway_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

const (
	testIssuer   = "https://auth.example"
	testAudience = "https://api.example"
)

// denylist is a static revocation checker: devices listed are refused.
type denylist struct {
	mu      sync.Mutex
	devices map[string]bool
}

var errDenied = errors.New("device denied")

func (d *denylist) CheckRevoked(_ context.Context, _ keys.KeyID, c *token.Claims) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.devices[c.Device] {
		return errDenied
	}
	return nil
}

func (d *denylist) revoke(device string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.devices == nil {
		d.devices = map[string]bool{}
	}
	d.devices[device] = true
}

// world is an issuer key, a verifier with a denylist, and an
// Authenticator for publicURL.
type world struct {
	sk     *keys.SecretKey
	minter *token.Minter
	deny   *denylist
	auth   *httpauth.Authenticator
	v      *verifier.Verifier // the one auth uses
}

func newWorld(t testing.TB, publicURL string) *world {
	t.Helper()
	sk, err := keys.GenerateSecretKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(token.Config{Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verifier.NewStaticKeySet(sk.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	deny := &denylist{}
	v, err := verifier.New(ks, testIssuer, testAudience, verifier.WithRevocation(deny))
	if err != nil {
		t.Fatal(err)
	}
	a, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return &world{sk: sk, minter: m, deny: deny, auth: a, v: v}
}

// device holds a DPoP key and a token bound to it.
type device struct {
	key   ed25519.PrivateKey
	token string
}

func (w *world) device(t testing.TB, account, dev string) *device {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := w.minter.Mint(w.sk, token.Subject{Account: account, Device: dev, JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	return &device{key: priv, token: tok}
}

// sign sets Authorization and a fresh DPoP proof for method and url.
func (d *device) sign(t testing.TB, h http.Header, method, url string) {
	t.Helper()
	p, err := dpop.NewProof(d.key, method, url, d.token, "")
	if err != nil {
		t.Fatal(err)
	}
	h.Set("Authorization", "DPoP "+d.token)
	h.Set("DPoP", p)
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
