package gateway

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// TestDependencies: the gateway core pulls in no Redis client and no HTTP
// framework; Redis is wired by cmd/hallpass (dpop/redisreplay,
// revocation/redisstore).
func TestDependencies(t *testing.T) {
	deps := depcheck.Allowed(t, "github.com/hallpass/hallpass/gateway", func(dep string) bool {
		switch {
		case strings.Contains(dep, "redis"), strings.Contains(dep, "labstack/echo"), strings.Contains(dep, "go-jose"):
			return false
		}
		return strings.HasPrefix(dep, "github.com/hallpass/hallpass/") || strings.HasPrefix(dep, "golang.org/x/") ||
			strings.HasPrefix(dep, "aidanwoods.dev/")
	})
	t.Logf("non-standard dependencies: %v", deps)
}
