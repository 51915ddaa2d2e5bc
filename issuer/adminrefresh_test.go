package issuer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hallpass/hallpass/issuer"
)

// refreshManager is a KeyManager that also rotates the refresh-token keys
// (as cmd/hallpass's key ring does); it counts the calls and fails on
// demand. That the keys really change is tested on real stores in
// keys/live and end to end in cmd/hallpass.
type refreshManager struct {
	lateRing
	rotations, endAlls atomic.Int32
	fail               error
}

func (m *refreshManager) RotateRefresh(context.Context) error {
	m.rotations.Add(1)
	return m.fail
}

func (m *refreshManager) EndAllSessions(context.Context) error {
	m.endAlls.Add(1)
	return m.fail
}

var _ issuer.RefreshKeyManager = (*refreshManager)(nil)

func TestAdminRefreshKeys(t *testing.T) {
	forEachBackend(t, testAdminRefreshKeys)
}

// testAdminRefreshKeys: the two refresh-key routes call the manager found
// on Config.KeyManager, answer with the ids this node opens tokens with
// (never a key), and are audited; end-all also writes an "all" entry, so
// the access tokens issued before are refused at once; without a manager,
// or when it fails, the answer is 503 and no entry is written; without an
// admin key nothing is called.
func testAdminRefreshKeys(t *testing.T, be backend) {
	a := newAdminEnv(t, be)
	ring := a.cfg.KeyManager.(lateRing)
	for i, tc := range []struct {
		name       string
		manager    bool
		fail       error
		path       string
		key        bool
		status     int
		rotations  int32
		endAlls    int32
		entry      bool // an "all" entry is written: the device's access token is refused
		wantTarget map[string]string
	}{
		{name: "rotate", manager: true, path: issuer.PathAdminKeysRotateRefresh, key: true, status: http.StatusOK, rotations: 1,
			wantTarget: map[string]string{"refresh_kid": "*"}},
		{name: "rotate without a manager", path: issuer.PathAdminKeysRotateRefresh, key: true, status: http.StatusServiceUnavailable},
		{name: "end all without a manager", path: issuer.PathAdminSessionsEndAll, key: true, status: http.StatusServiceUnavailable},
		{name: "store fails on rotate", manager: true, fail: errors.New("store down"), path: issuer.PathAdminKeysRotateRefresh, key: true,
			status: http.StatusServiceUnavailable, rotations: 1},
		{name: "store fails on end all", manager: true, fail: errors.New("store down"), path: issuer.PathAdminSessionsEndAll, key: true,
			status: http.StatusServiceUnavailable, endAlls: 1, wantTarget: map[string]string{"sessions": "all"}},
		{name: "no admin key", manager: true, path: issuer.PathAdminSessionsEndAll, status: http.StatusUnauthorized},
		// Last: its "all" entry refuses every token issued before it.
		{name: "end all sessions", manager: true, path: issuer.PathAdminSessionsEndAll, key: true, status: http.StatusOK, endAlls: 1, entry: true,
			wantTarget: map[string]string{"refresh_kid": "*", "sessions": "all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &refreshManager{lateRing: ring, fail: tc.fail}
			a.cfg.KeyManager = ring
			if tc.manager {
				a.cfg.KeyManager = m
			}
			a.start()
			d := a.newDevice("EdDSA")
			d.signup(fmt.Sprintf("refresher%d", i))
			key := ""
			if tc.key {
				key = a.key
			}
			r := a.adminDo(http.MethodPost, tc.path, key, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if m.rotations.Load() != tc.rotations || m.endAlls.Load() != tc.endAlls {
				t.Fatalf("manager called %d/%d times, want %d/%d", m.rotations.Load(), m.endAlls.Load(), tc.rotations, tc.endAlls)
			}
			if tc.status == http.StatusOK {
				body := r.json(t)
				ids, _ := body["refresh_keys"].([]any)
				if len(ids) != 1 || ids[0] != string(a.local.ID()) {
					t.Fatalf("refresh_keys = %v, want this node's key id", body["refresh_keys"])
				}
				if cc := r.header.Get("Cache-Control"); cc != "no-store" {
					t.Fatalf("Cache-Control %q", cc)
				}
				entry, _ := body["entry"].(map[string]any)
				if (entry != nil) != tc.entry || (tc.entry && entry["kind"] != "all") {
					t.Fatalf("entry = %v, want an all entry: %v", body["entry"], tc.entry)
				}
			}
			// The access token issued before is refused only after end-all.
			// (The mirror learns of the entry at once: the issuer observes
			// what it writes.)
			if st := d.me().status; (st != http.StatusOK) != tc.entry {
				t.Fatalf("/v1/me after the call: %d; want it refused: %v", st, tc.entry)
			}
			recs := a.audit.Records()
			rec := recs[len(recs)-1]
			if rec.Action != "POST "+tc.path || rec.Status != tc.status {
				t.Fatalf("audit record %+v", rec)
			}
			for k, v := range tc.wantTarget {
				if got, ok := rec.Targets[k]; !ok || (v != "*" && got != v) {
					t.Fatalf("audit targets %v, want %s=%s", rec.Targets, k, v)
				}
			}
			if tc.wantTarget == nil && len(rec.Targets) != 0 {
				t.Fatalf("audit targets %v, want none", rec.Targets)
			}
		})
	}
}
