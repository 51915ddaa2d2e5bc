package flow

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// TestNoTransport: the flows are transport-free. They import neither Echo
// nor net/http (directly or through a dependency), so another transport
// can run them and no HTTP concern leaks into them.
func TestNoTransport(t *testing.T) {
	depcheck.Allowed(t, "github.com/hallpass/hallpass/flow", func(dep string) bool {
		return !strings.Contains(dep, "labstack/echo") && !strings.Contains(dep, "github.com/redis/")
	})
	imports := depcheck.All(t, "github.com/hallpass/hallpass/flow")
	for _, banned := range []string{"net/http", "net/http/httptest"} {
		if imports[banned] {
			t.Errorf("flow depends on %s", banned)
		}
	}
}
