package dpop

import (
	"os/exec"
	"strings"
	"testing"
)

// A verifier that imports dpop must not pull in Redis, Echo or go-jose (used
// here only by the tests): the Redis cache lives in dpop/redisreplay.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/redis/", "github.com/labstack/", "github.com/go-jose/", "github.com/hallpass/hallpass/internal/redistest"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("dpop depends on %s", dep)
			}
		}
	}
}
