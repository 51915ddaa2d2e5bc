package issuer_test

import (
	"net/http"
	"testing"

	"github.com/hallpass/hallpass/issuer"
)

// TestAdminWhoamiAndAudit: whoami names the key that called (never the
// key), and the audit route reads the sink back, newest first, itself
// audited like every admin call.
func TestAdminWhoamiAndAudit(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	tests := []struct {
		name   string
		path   string
		key    string
		status int
		check  func(t *testing.T, r resp)
	}{
		{name: "whoami", path: issuer.PathAdminWhoami, key: a.key, status: http.StatusOK, check: func(t *testing.T, r resp) {
			if got := r.str(t, "key_id"); got != "ops-alice" {
				t.Errorf("key_id %q", got)
			}
		}},
		{name: "whoami without a key", path: issuer.PathAdminWhoami, status: http.StatusUnauthorized},
		{name: "audit", path: issuer.PathAdminAudit + "?limit=2", key: a.key, status: http.StatusOK, check: func(t *testing.T, r resp) {
			recs, _ := r.json(t)["records"].([]any)
			if len(recs) != 2 {
				t.Fatalf("%d records, want 2", len(recs))
			}
			newest, _ := recs[0].(map[string]any)
			if newest["action"] != "GET "+issuer.PathAdminWhoami || newest["who"] != "-" {
				t.Errorf("newest record %v: want the refused whoami", newest)
			}
		}},
		{name: "audit, limit too large", path: issuer.PathAdminAudit + "?limit=1001", key: a.key, status: http.StatusBadRequest},
		{name: "audit, limit not a number", path: issuer.PathAdminAudit + "?limit=x", key: a.key, status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.adminDo(http.MethodGet, tt.path, tt.key, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			if cc := r.header.Get("Cache-Control"); tt.status == http.StatusOK && cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
	recs := a.audit.Records()
	last := recs[len(recs)-1]
	if last.Who != "ops-alice" || last.Action != "GET "+issuer.PathAdminAudit || last.Status != http.StatusBadRequest {
		t.Errorf("the audit read is not audited: %+v", last)
	}
}

// TestAdminAuditUnreadable: a sink that cannot give records back is 503.
func TestAdminAuditUnreadable(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{}, func(c *issuer.Config) { c.AuditSink = teeAudit{&issuer.MemoryAudit{}} })
	if r := a.call(http.MethodGet, issuer.PathAdminAudit, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", r.status)
	}
}
