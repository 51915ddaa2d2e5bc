package revocation_test

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// TestDependencies keeps the core light: a verifier that uses a Mirror must
// not pull in Redis, bbolt or Echo. Allowed outside the standard library:
// golang.org/x/..., aidanwoods.dev/... and the hallpass keys, token and
// internal/strictjson packages.
func TestDependencies(t *testing.T) {
	deps := depcheck.Allowed(t, "github.com/hallpass/hallpass/revocation", func(dep string) bool {
		switch {
		case strings.Contains(dep, "labstack/echo"), strings.Contains(dep, "redis"), strings.Contains(dep, "bbolt"):
			return false
		case dep == "github.com/hallpass/hallpass/keys",
			dep == "github.com/hallpass/hallpass/token",
			dep == "github.com/hallpass/hallpass/internal/strictjson":
			return true
		}
		return strings.HasPrefix(dep, "golang.org/x/") || strings.HasPrefix(dep, "aidanwoods.dev/")
	})
	t.Logf("non-standard dependencies: %v", deps)
}
