package issuer_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
)

// authJSON is an authenticated request with a JSON body.
func (d *device) authJSON(method, path string, body any) resp {
	d.e.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, d.e.url(path), bytes.NewReader(b))
	req.Header.Set("Authorization", "DPoP "+d.access)
	req.Header.Set("DPoP", d.proof(method, path, d.access))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return d.e.do(req)
}

// proofPost is an unauthenticated POST with a JSON body and a proof of
// d's key (signup, link, recover), from the client address xff when set
// (the env trusts loopback as a proxy in the tests that use it).
func (d *device) proofPost(path string, body any, xff string) resp {
	d.e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, d.e.url(path), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", d.proof(http.MethodPost, path, ""))
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return d.e.do(req)
}

// keep takes the tokens and ids of a 201 from signup, link or recover.
func (d *device) keep(r resp) {
	d.e.t.Helper()
	if r.status != http.StatusCreated {
		d.e.t.Fatalf("status %d, body %s", r.status, r.body)
	}
	d.access, d.rt = r.str(d.e.t, "access_token"), r.str(d.e.t, "refresh_token")
	d.accID, d.devID = r.str(d.e.t, "account_id"), r.str(d.e.t, "device_id")
}

// linkCode makes a link code on d.
func (d *device) linkCode() string {
	d.e.t.Helper()
	r := d.authJSON(http.MethodPost, issuer.PathLinkCodes, nil)
	if r.status != http.StatusCreated {
		d.e.t.Fatalf("link code: %d %s", r.status, r.body)
	}
	code := r.str(d.e.t, "code")
	d.e.remember(code)
	return code
}

// recoveryCodes makes a set of recovery codes on d.
func (d *device) recoveryCodes() []string {
	d.e.t.Helper()
	r := d.authJSON(http.MethodPost, issuer.PathRecoveryCodes, nil)
	if r.status != http.StatusCreated {
		d.e.t.Fatalf("recovery codes: %d %s", r.status, r.body)
	}
	var out struct{ Codes []string }
	if err := json.Unmarshal(r.body, &out); err != nil || len(out.Codes) != 10 {
		d.e.t.Fatalf("recovery codes: %s", r.body)
	}
	d.e.remember(out.Codes...)
	return out.Codes
}

func (d *device) link(code string) resp {
	return d.proofPost(issuer.PathLink, map[string]string{"link_code": code, "device_name": "new phone"}, "")
}

func (d *device) recoverWith(username, code string, signOutOthers *bool, xff string) resp {
	body := map[string]any{"username": username, "recovery_code": code, "device_name": "recovered phone"}
	if signOutOthers != nil {
		body["sign_out_other_devices"] = *signOutOthers
	}
	return d.proofPost(issuer.PathRecover, body, xff)
}

// withClockedRevocation is withRevocation whose mirror reads the env's
// clock (so a test can move past an entry's lifetime) and tolerates the
// jumps.
func withClockedRevocation(t testing.TB, be backend, out **revocation.Mirror) option {
	return func(c *issuer.Config) {
		var rs revocation.Store
		if rb, ok := be.(*redisBackend); ok {
			r, err := revredis.New(rb.client, revredis.Options{OpTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			rs = r
		} else {
			r, err := revbolt.Open(filepath.Join(t.(interface{ TempDir() string }).TempDir(), "revocation.db"), revbolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			rs = r
		}
		m, err := revocation.NewMirror(rs, revocation.MirrorOptions{Now: c.Now, MaxStaleness: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		m.Start()
		t.Cleanup(func() { m.Close() })
		<-m.Synced()
		c.Revocations, c.RevocationMirror = rs, m
		*out = m
	}
}
