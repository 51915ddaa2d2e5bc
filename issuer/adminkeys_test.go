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
