package issuer_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps: the issuer depends on the Store, ReplayCache and Limiter
// interfaces, never on an engine; cmd/hallpass wires Redis and bbolt.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hallpass/hallpass/issuer").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/redis/", "go.etcd.io/bbolt", "/account/boltstore", "/account/redisstore", "/redisreplay", "/redislimit", "/revocation/redisstore", "/revocation/boltstore", "/redisaudit", "/redisring"} {
			if strings.Contains(dep, banned) {
				t.Errorf("issuer depends on %s", dep)
			}
		}
	}
}
