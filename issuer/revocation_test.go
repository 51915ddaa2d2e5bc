package issuer_test

import (
	"context"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
)

// TestReuseAddsDeviceEntry: a refresh-token reuse reaches the mirrors.
func TestReuseAddsDeviceEntry(t *testing.T) {
	var mirror *revocation.Mirror
	be := &boltBackend{}
	e := newEnv(t, be, withRevocation(t, be, &mirror, nil))
	d := e.newDevice("EdDSA")
	d.signup("reuser2")
	t0 := d.rt
	d.refresh()
	d.refresh()
	if r := d.refreshWith(t0); r.status != http.StatusBadRequest {
		t.Fatalf("reuse: %d", r.status)
	}
	waitRevoked(t, mirror, d.access)
}

// staleMirror is a RevocationMirror whose freshness the test sets.
type staleMirror struct{ stale atomic.Bool }

func (m *staleMirror) CheckRevoked(context.Context, keys.KeyID, *token.Claims) error {
	if m.stale.Load() {
		return revocation.ErrStale
	}
	return nil
}

func (m *staleMirror) Ready() error {
	if m.stale.Load() {
		return revocation.ErrStale
	}
	return nil
}

// TestStaleMirror: a stale mirror makes authenticated requests 503 (fail
// closed, retry later, not a verdict on the token) and /readyz 503.
func TestStaleMirror(t *testing.T) {
	m := &staleMirror{}
	e := newEnv(t, &boltBackend{}, func(c *issuer.Config) { c.RevocationMirror = m })
	d := e.newDevice("ES256")
	d.signup("stale")
	ready := func() int {
		req, _ := http.NewRequest(http.MethodGet, e.url(issuer.PathReadyz), nil)
		return e.do(req).status
	}
	if r := d.me(); r.status != http.StatusOK || ready() != http.StatusOK {
		t.Fatalf("fresh: %d %d", r.status, ready())
	}
	m.stale.Store(true)
	if r := d.me(); r.status != http.StatusServiceUnavailable || r.code(t) != issuer.CodeUnavailable {
		t.Fatalf("stale /v1/me: %d %s", r.status, r.body)
	}
	if s := ready(); s != http.StatusServiceUnavailable {
		t.Fatalf("stale /readyz: %d", s)
	}
	m.stale.Store(false)
	if r := d.me(); r.status != http.StatusOK {
		t.Fatalf("fresh again: %d", r.status)
	}
}

// TestAdminKeysFileWritableByOthers: the server refuses (503, fail
// closed) a keys file others could add a key to.
func TestAdminKeysFileWritableByOthers(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	if err := os.Chmod(a.cfg.AdminKeysFile, 0o622); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(a.cfg.AdminKeysFile, time.Now().Add(2*time.Second), time.Now().Add(2*time.Second))
	if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("group-writable keys file: %d", r.status)
	}
}
