package socketauth

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// TestDependencies keeps socketauth to socket.io, httpauth and the core
// packages: a socket server that verifies tokens must not pull in Echo, a
// Redis client or a store engine (the revocation mirror's store is the
// caller's choice).
func TestDependencies(t *testing.T) {
	deps := depcheck.Allowed(t, "github.com/hallpass/hallpass/socketio/socketauth", func(dep string) bool {
		switch {
		case strings.Contains(dep, "labstack/echo"), strings.Contains(dep, "redis"),
			strings.Contains(dep, "bbolt"), strings.Contains(dep, "go-jose"),
			strings.HasPrefix(dep, "github.com/hallpass/hallpass/revocation/"):
			return false
		}
		return true
	})
	t.Logf("non-standard dependencies: %d", len(deps))
}
