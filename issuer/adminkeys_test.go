package issuer_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
)

// The admin key goes to the operator, once; the line goes to the file that
// Config.AdminKeysFile names. A fixed random source makes the output
// reproducible here; leave it nil (crypto/rand) in real use.
func ExampleNewAdminKey() {
	fixed := bytes.NewReader(bytes.Repeat([]byte{7}, 32))
	key, line, err := issuer.NewAdminKey(fixed, "ops-alice", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	fmt.Println(key[:len(issuer.AdminKeyPrefix)], len(key))
	fmt.Println(line[:7], len(line[7:71]), line[72:])
	// Output:
	// hpadm_ 49
	// sha256: 64 ops-alice 2026-01-02T03:04:05Z
}

func TestAdminKeysFileMalformed(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	file := a.cfg.AdminKeysFile
	good, _ := os.ReadFile(file)
	for _, tc := range []struct {
		name   string
		extra  string
		status int
	}{
		{name: "comments and blank lines", extra: "\n# withdrawn: sha256:00 old\n\n", status: http.StatusOK},
		{name: "short digest", extra: "sha256:abcd ops-bob\n", status: http.StatusServiceUnavailable},
		{name: "no id", extra: "sha256:" + strings.Repeat("ab", 32) + "\n", status: http.StatusServiceUnavailable},
		{name: "other hash", extra: "md5:" + strings.Repeat("ab", 16) + " x\n", status: http.StatusServiceUnavailable},
		{name: "bad id", extra: "sha256:" + strings.Repeat("ab", 32) + " a/b\n", status: http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, append(append([]byte{}, good...), tc.extra...), 0o600); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(time.Duration(len(tc.name)) * time.Second)
			os.Chtimes(file, at, at)
			if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
		})
	}
}

// TestAdminKeyIDDash: "-" is the audit record's who of a call made with no
// accepted key, so it cannot name a key. A key named "-" had its calls
// taken for refused ones: sampled (not recorded at all with
// AuditRefusedPerMinute < 0, only 60 a minute otherwise), counted in
// hallpass_admin_refused_total, indistinguishable from a guesser's. Now
// NewAdminKey refuses the id and a file holding it is refused (fail
// closed), so no call made with it changes anything unrecorded.
func TestAdminKeyIDDash(t *testing.T) {
	if _, _, err := issuer.NewAdminKey(nil, "-", time.Now()); err == nil {
		t.Error(`NewAdminKey made a key named "-"`)
	}
	a := newAdminEnv(t, &boltBackend{}, func(c *issuer.Config) { c.AuditRefusedPerMinute = -1 })
	d := a.newDevice("EdDSA")
	d.signup("erin")
	key, line, err := issuer.NewAdminKey(nil, "x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	line = strings.Replace(line, " x ", " - ", 1)
	f, err := os.OpenFile(a.cfg.AdminKeysFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line + "\n")
	f.Close()
	before := len(a.audit.Records())
	r := a.adminDo(http.MethodPost, "/v1/admin/accounts/"+d.accID+"/ban", key, nil)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("ban with a key named %q: %d, want 503 (the file refused)", "-", r.status)
	}
	if b := a.call(http.MethodGet, "/v1/admin/accounts/"+d.accID, nil); b.status == http.StatusOK && b.json(t)["banned"] == true {
		recs := a.audit.Records()[before:]
		t.Errorf("the account was banned by a key named %q; audit records since: %+v", "-", recs)
	}
}
