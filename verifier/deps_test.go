package verifier

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// TestDependencies keeps the verifier light: a service that only verifies
// tokens must not pull in an HTTP framework, a database client or a JOSE
// library. Allowed outside the standard library: golang.org/x/...,
// aidanwoods.dev/... and the hallpass keys, token, problem and
// internal/strictjson packages.
func TestDependencies(t *testing.T) {
	deps := depcheck.Allowed(t, "github.com/hallpass/hallpass/verifier", func(dep string) bool {
		switch {
		case strings.Contains(dep, "labstack/echo"), strings.Contains(dep, "redis"), strings.Contains(dep, "go-jose"):
			return false
		case dep == "github.com/hallpass/hallpass/keys",
			dep == "github.com/hallpass/hallpass/token",
			dep == "github.com/hallpass/hallpass/internal/strictjson",
			dep == "github.com/hallpass/hallpass/problem":
			return true
		}
		return strings.HasPrefix(dep, "golang.org/x/") || strings.HasPrefix(dep, "aidanwoods.dev/")
	})
	t.Logf("non-standard dependencies: %v", deps)
}
