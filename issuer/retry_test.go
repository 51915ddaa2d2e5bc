package issuer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
)

// newRetryID makes a retry id as a client does: 128 random bits, base64url.
func newRetryID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// refreshRetry presents rt with a retry id (none when id is nil), as a
// form or as JSON, with a fresh proof.
func (d *device) refreshRetry(rt string, id *string, asJSON bool) resp {
	fields := map[string]string{"grant_type": "refresh_token", "refresh_token": rt}
	if id != nil {
		fields["retry_id"] = *id
	}
	var body []byte
	ctype := "application/x-www-form-urlencoded"
	if asJSON {
		body, _ = json.Marshal(fields)
		ctype = "application/json"
	} else {
		form := url.Values{}
		for k, v := range fields {
			form.Set(k, v)
		}
		body = []byte(form.Encode())
	}
	req, _ := http.NewRequest(http.MethodPost, d.e.url(issuer.PathToken), bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("DPoP", d.proof(http.MethodPost, issuer.PathToken, ""))
	return d.e.do(req)
}

// A refresh whose answer was lost is retried long after the grace window
// with the same refresh token and retry id: the device gets the refresh
// token the lost answer held, with an access token minted now, and is not
// signed out; that refresh token then rotates normally.
func TestRefreshRetryIDAfterGrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		d := e.newDevice("ES256")
		d.signup("tunnel")
		old, id := d.rt, newRetryID(t)
		lost := d.refreshRetry(old, &id, false) // the client never saw this answer
		if lost.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", lost.status, lost.body)
		}
		// Past the grace window and the lost access token's lifetime.
		e.clock.Advance(15 * time.Minute)
		var again resp
		for i, asJSON := range []bool{true, false} { // a retry may be retried
			again = d.refreshRetry(old, &id, asJSON)
			if again.status != http.StatusOK {
				t.Fatalf("retry %d after grace with the retry id: %d %s", i, again.status, again.body)
			}
			if again.str(t, "refresh_token") != lost.str(t, "refresh_token") {
				t.Fatalf("retry %d got another refresh token", i)
			}
			if again.str(t, "access_token") == lost.str(t, "access_token") {
				t.Fatalf("retry %d got the lost, expired access token", i)
			}
			if exp := again.json(t)["expires_in"].(float64); exp < 590 || exp > 600 {
				t.Errorf("retry %d: expires_in = %v, want a fresh token (about 600)", i, exp)
			}
		}
		d.access, d.rt = again.str(t, "access_token"), again.str(t, "refresh_token")
		checkMe(t, d)
		d.refresh()
		checkMe(t, d)

		if !containsLog(e, `"event":"refresh_retried"`) {
			t.Error("no audit line for the retry")
		}
		if containsLog(e, id) || containsLog(e, old) {
			t.Error("the retry id or the refresh token reached the log")
		}
		if m := scrape(t, e); !contains(m, `hallpass_refreshes_total{outcome="retried"} 2`) || contains(m, `outcome="reused"`) {
			t.Errorf("retried metric missing or a reuse counted:\n%s", grep(m, "hallpass_refreshes_total"))
		}
	})
}

// After the grace window, the previous refresh token with another retry id
// or none is reuse, as without retry ids: the device is signed out.
func TestRefreshRetryIDMismatch(t *testing.T) {
	other := "another-retry-id-of-22c"
	tests := []struct {
		name string
		id   *string
	}{
		{"another id", &other},
		{"no id", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, &boltBackend{})
			d := e.newDevice("EdDSA")
			d.signup("thief")
			old, id := d.rt, newRetryID(t)
			if r := d.refreshRetry(old, &id, false); r.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", r.status, r.body)
			}
			e.clock.Advance(31 * time.Second)
			r := d.refreshRetry(old, tc.id, false)
			if r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
				t.Fatalf("previous token after grace, %s: %d %s", tc.name, r.status, r.body)
			}
			dev, err := e.store.GetDevice(context.Background(), d.devID)
			if err != nil || dev.Active() {
				t.Fatalf("device after reuse: %+v, %v", dev, err)
			}
			// Signed out: the right id no longer helps.
			if r := d.refreshRetry(old, &id, false); r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
				t.Fatalf("retry id after reuse: %d %s", r.status, r.body)
			}
		})
	}
}

// A malformed retry id is invalid_request, and the session is untouched.
func TestRefreshRetryIDMalformed(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("typo")
	for name, id := range map[string]string{
		"empty":     "",
		"too short": strings.Repeat("A", 21),
		"too long":  strings.Repeat("A", 65),
		"padding":   strings.Repeat("A", 22) + "==",
		"base64":    strings.Repeat("A", 21) + "+",
		"space":     strings.Repeat("A", 21) + " ",
		"non-ASCII": strings.Repeat("A", 21) + "é",
	} {
		for _, asJSON := range []bool{false, true} {
			r := d.refreshRetry(d.rt, &id, asJSON)
			if r.status != http.StatusBadRequest || r.code(t) != "invalid_request" {
				t.Errorf("retry_id %s (JSON %v): %d %s", name, asJSON, r.status, r.body)
			}
		}
	}
	for _, id := range []string{strings.Repeat("A", 22), strings.Repeat("_-", 32)} { // the bounds
		r := d.refreshRetry(d.rt, &id, false)
		if r.status != http.StatusOK {
			t.Fatalf("retry_id of %d characters: %d %s", len(id), r.status, r.body)
		}
		d.access, d.rt = r.str(t, "access_token"), r.str(t, "refresh_token")
	}
	checkMe(t, d)
}
