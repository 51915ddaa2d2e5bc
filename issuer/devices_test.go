package issuer_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/token"
)

// withRevocation gives the issuer a revocation store (bbolt, in the test's
// directory) and a running mirror over it; the mirror is returned through
// out.
func withRevocation(t testing.TB, be backend, out **revocation.Mirror, st *revocation.Store) option {
	return func(c *issuer.Config) {
		var rs revocation.Store
		if rb, ok := be.(*redisBackend); ok {
			r, err := revredis.New(rb.client, revredis.Options{OpTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			rs = r
		} else {
			r, err := revbolt.Open(filepath.Join(t.TempDir(), "revocation.db"), revbolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			rs = r
		}
		m, err := revocation.NewMirror(rs, revocation.MirrorOptions{MaxStaleness: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		m.Start()
		t.Cleanup(func() { m.Close() })
		select {
		case <-m.Synced():
		case <-time.After(10 * time.Second):
			t.Fatal("mirror did not sync")
		}
		c.Revocations = rs
		c.RevocationMirror = m
		if out != nil {
			*out = m
		}
		if st != nil {
			*st = rs
		}
	}
}

// addDevice binds a second device to d's account straight in the store
// (the API has no "add device" flow yet) and mints it an access token
// with the issuer's signing key.
func (e *env) addDevice(d *device) *device {
	e.t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(k.Public())
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := account.NewID(account.DevicePrefix, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clock.Now().UTC()
	dev := account.Device{ID: id, AccountID: d.accID, Name: "second", JKT: jkt, Created: now, LastUsed: now}
	sess := account.Session{DeviceID: id, AccountID: d.accID, JKT: jkt, Created: now, LastUsed: now, Expires: now.Add(24 * time.Hour)}
	if err := e.store.AddDevice(context.Background(), dev, sess); err != nil {
		e.t.Fatal(err)
	}
	m, err := token.NewMinter(token.Config{Issuer: e.hs.URL, Audience: e.hs.URL, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	at, _, err := m.Mint(e.ring.Current(), token.Subject{Account: d.accID, Device: id, JKT: jkt})
	if err != nil {
		e.t.Fatal(err)
	}
	e.remember(at)
	return &device{e: e, key: crypto.Signer(k), access: at, accID: d.accID, devID: id}
}

func (d *device) devices() resp {
	return d.e.do(d.authReq(http.MethodGet, issuer.PathMeDevices, d.access))
}

func (d *device) revokeDevice(id string) resp {
	return d.e.do(d.authReq(http.MethodDelete, issuer.PathMeDevices+"/"+id, d.access))
}

func TestMyDevices(t *testing.T) {
	for _, be := range []func(testing.TB) backend{
		func(testing.TB) backend { return &boltBackend{} },
		newRedisBackend,
	} {
		b := be(t)
		t.Run(b.name(), func(t *testing.T) {
			var mirror *revocation.Mirror
			e := newEnv(t, b, withRevocation(t, b, &mirror, nil))
			phone := e.newDevice("ES256")
			phone.signup("alice")
			laptop := e.addDevice(phone)
			stranger := e.newDevice("EdDSA")
			stranger.signup("mallory")

			r := phone.devices()
			if r.status != http.StatusOK {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			devs, _ := r.json(t)["devices"].([]any)
			if len(devs) != 2 {
				t.Fatalf("want 2 devices, got %s", r.body)
			}
			for _, x := range devs {
				m := x.(map[string]any)
				cur := m["id"] == phone.devID
				if m["current"] != cur || m["active"] != true || m["name"] == "" || m["created"] == nil || m["last_used"] == nil {
					t.Errorf("device %v", m)
				}
				if _, ok := m["jkt"]; ok {
					t.Error("jkt is listed")
				}
			}

			// Another account's device: 404, and it keeps working.
			if r := phone.revokeDevice(stranger.devID); r.status != http.StatusNotFound || r.code(t) != issuer.CodeNotFound {
				t.Fatalf("revoke another account's device: %d %s", r.status, r.body)
			}
			if r := phone.revokeDevice("dev_nonexistentnonexistent"); r.status != http.StatusNotFound {
				t.Fatalf("revoke a junk id: %d", r.status)
			}
			if r := stranger.me(); r.status != http.StatusOK {
				t.Fatalf("stranger after a refused revoke: %d", r.status)
			}

			// Sign the laptop out from the phone.
			if r := phone.revokeDevice(laptop.devID); r.status != http.StatusNoContent {
				t.Fatalf("revoke my laptop: %d %s", r.status, r.body)
			}
			if r := laptop.me(); r.status != http.StatusUnauthorized || r.code(t) != issuer.CodeTokenRevoked {
				t.Fatalf("laptop after revoke: %d %s", r.status, r.body)
			}
			// Every mirror refuses it, not only the issuer's store check.
			waitRevoked(t, mirror, laptop.access)
			if r := phone.me(); r.status != http.StatusOK {
				t.Fatalf("phone after revoking the laptop: %d", r.status)
			}
			r = phone.devices()
			for _, x := range r.json(t)["devices"].([]any) {
				m := x.(map[string]any)
				if m["id"] == laptop.devID && (m["active"] != false || m["revoked"] == nil) {
					t.Errorf("revoked laptop listed as %v", m)
				}
			}
			// Idempotent.
			if r := phone.revokeDevice(laptop.devID); r.status != http.StatusNoContent {
				t.Fatalf("revoke again: %d", r.status)
			}
			// The revoked device cannot list or revoke.
			if r := laptop.devices(); r.status != http.StatusUnauthorized {
				t.Fatalf("revoked device lists: %d", r.status)
			}
			// No credentials.
			req, _ := http.NewRequest(http.MethodGet, e.url(issuer.PathMeDevices), nil)
			if r := e.do(req); r.status != http.StatusUnauthorized {
				t.Fatalf("anonymous list: %d", r.status)
			}
		})
	}
}

// waitRevoked waits until the mirror refuses tok.
func waitRevoked(t *testing.T, m *revocation.Mirror, tok string) {
	t.Helper()
	c, err := token.ParseClaims(unsafePayload(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	f, err := token.UnsafeParseFooterKid(tok)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := m.CheckRevoked(context.Background(), f.Kid, c); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the mirror does not refuse the revoked token")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLogoutAddsDeviceEntry: a logout reaches the mirrors.
func TestLogoutAddsDeviceEntry(t *testing.T) {
	var mirror *revocation.Mirror
	be := &boltBackend{}
	e := newEnv(t, be, withRevocation(t, be, &mirror, nil))
	d := e.newDevice("EdDSA")
	d.signup("bob")
	c, err := token.ParseClaims(unsafePayload(t, d.access))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := token.UnsafeParseFooterKid(d.access)
	if err := mirror.CheckRevoked(context.Background(), f.Kid, c); err != nil {
		t.Fatalf("before logout: %v", err)
	}
	if r := d.logout(); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}
	waitRevoked(t, mirror, d.access)
}

// unsafePayload returns the claims JSON of a v4.public token WITHOUT
// verifying it: tests only, on tokens they minted.
func unsafePayload(t testing.TB, tok string) []byte {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) < 3 {
		t.Fatal("not a PASETO")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(b) < 64 {
		t.Fatal("bad PASETO body")
	}
	return b[:len(b)-64]
}
