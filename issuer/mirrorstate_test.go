package issuer_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/revocation"
)

// With a revocation store and a mirror of it (as `hallpass serve` runs),
// the identity routes (/v1/me, /v1/logout, GET /v1/me/devices) take device
// and ban state from the mirror and read only the account; the routes that
// change the account still read the full state from the store.

// TestIdentityRoutesRefuseEveryRevocation: every way of revoking a device
// or an account refuses its access token at once on /v1/me and the other
// identity routes, as on the routes that read the store.
func TestIdentityRoutesRefuseEveryRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		var mirror *revocation.Mirror
		a := newAdminEnv(t, be, withClockedRevocation(t, be, &mirror))
		for i, p := range revocationPaths(t, a, mirror) {
			d := a.newDevice("EdDSA")
			d.signup("ident" + string(rune('a'+i)))
			checkMe(t, d) // the token is in the verified-token cache
			p.do(d)
			for route, r := range map[string]resp{
				"GET /v1/me":          d.me(),
				"GET /v1/me/devices":  d.e.do(d.authReq(http.MethodGet, issuer.PathMeDevices, d.access)),
				"POST /v1/link-codes": d.authJSON(http.MethodPost, issuer.PathLinkCodes, nil),
				"POST /v1/logout":     d.logout(),
			} {
				if r.status != http.StatusUnauthorized || r.code(t) != issuer.CodeTokenRevoked {
					t.Errorf("%s: %s: %d %s", p.name, route, r.status, r.body)
				}
			}
		}
	})
}

// TestAccountRoutesReadTheStore: a device signed out in the store whose
// entry never reached the mirror (the write failed on another node) keeps
// the identity routes until its token expires, as at every verifier that
// takes state from the mirror, but can no longer change the account. With
// a mirror that fails open the issuer does not lean on it: /v1/me reads the
// full state and refuses too.
func TestAccountRoutesReadTheStore(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "FailClosed", true: "FailOpen"}[failOpen], func(t *testing.T) { testAccountRoutesReadTheStore(t, failOpen) })
	}
}

func testAccountRoutesReadTheStore(t *testing.T, failOpen bool) {
	forEachBackend(t, func(t *testing.T, be backend) {
		var mirror *revocation.Mirror
		e := newEnv(t, be, withRevocation(t, be, &mirror, nil), func(c *issuer.Config) {
			if failOpen {
				m, err := revocation.NewMirror(c.Revocations, revocation.MirrorOptions{FailOpen: true})
				if err != nil {
					t.Fatal(err)
				}
				m.Start()
				t.Cleanup(func() { m.Close() })
				<-m.Synced()
				c.RevocationMirror = m
			}
		})
		d := e.newDevice("EdDSA")
		d.signup("storeonly" + map[bool]string{false: "closed", true: "open"}[failOpen])
		if err := e.store.EndSession(context.Background(), d.devID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if dev, err := e.store.GetDevice(context.Background(), d.devID); err != nil || dev.Active() {
			t.Fatalf("device after EndSession: %+v %v", dev, err)
		}
		if r := d.me(); failOpen && (r.status != http.StatusUnauthorized || r.code(t) != issuer.CodeTokenRevoked) ||
			!failOpen && r.status != http.StatusOK {
			t.Fatalf("fail open %v: /v1/me: %d %s", failOpen, r.status, r.body)
		}
		for route, r := range map[string]resp{
			"POST /v1/me/link-codes":     d.authJSON(http.MethodPost, issuer.PathLinkCodes, nil),
			"POST /v1/me/recovery-codes": d.authJSON(http.MethodPost, issuer.PathRecoveryCodes, nil),
			"PATCH /v1/me":               d.authJSON(http.MethodPatch, issuer.PathMe, map[string]string{"username": "takeover"}),
			"DELETE /v1/me/devices/{id}": d.revokeDevice(d.devID),
			"DELETE /v1/me":              d.authJSON(http.MethodDelete, issuer.PathMe, nil),
		} {
			if r.status != http.StatusUnauthorized || r.code(t) != issuer.CodeTokenRevoked {
				t.Errorf("fail open %v: %s: %d %s", failOpen, route, r.status, r.body)
			}
		}
	})
}

// TestUnwrittenEntries: a logout whose entry cannot be written fails
// whole (503, nothing changed: /v1/me still answers, and the retry signs
// the device out). A reuse detection, which nobody retries, ends the
// session whatever happens, and this node refuses the device's access
// token even though its entry was not written.
func TestUnwrittenEntries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		fa := &flakyRevocations{}
		e := newEnv(t, be, withRevocation(t, be, nil, nil), func(c *issuer.Config) {
			fa.Store = c.Revocations
			c.Revocations = fa
		})
		d := e.newDevice("EdDSA")
		d.signup("unwritten")
		checkMe(t, d)
		fa.fail.Store(-1)
		if r := d.logout(); r.status != http.StatusServiceUnavailable {
			t.Fatalf("logout with the revocation store down: %d %s", r.status, r.body)
		}
		checkMe(t, d)
		fa.fail.Store(0)
		if r := d.logout(); r.status != http.StatusNoContent {
			t.Fatalf("logout retried: %d %s", r.status, r.body)
		}
		if r := d.me(); r.status != http.StatusUnauthorized || r.code(t) != issuer.CodeTokenRevoked {
			t.Fatalf("/v1/me after the logout: %d %s", r.status, r.body)
		}

		v := e.newDevice("EdDSA")
		v.signup("unwrittenreuse")
		checkMe(t, v)
		old := v.rt
		v.refresh()
		e.clock.Advance(time.Minute)
		fa.fail.Store(-1)
		if r := v.refreshWith(old); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidGrant {
			t.Fatalf("reuse: %d %s", r.status, r.body)
		}
		if r := v.me(); r.status != http.StatusUnauthorized || r.code(t) != issuer.CodeTokenRevoked {
			t.Fatalf("/v1/me after a reuse whose entry was not written: %d %s", r.status, r.body)
		}
		// Counted: the logout's failed write and the reuse's.
		if m := scrape(t, e); !contains(m, "hallpass_revocation_write_failures_total 2") {
			t.Errorf("the failed write is not counted:\n%s", grep(m, "revocation"))
		}
	})
}
