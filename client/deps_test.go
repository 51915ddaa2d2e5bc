package client

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// TestDependencies keeps the client light enough to embed in any app (and
// in gomobile builds): outside the standard library only golang.org/x/...
// and the hallpass dpop, keys and problem packages (and the JSON reader dpop
// uses).
// No HTTP framework, database client or server package.
func TestDependencies(t *testing.T) {
	depcheck.Allowed(t, "github.com/hallpass/hallpass/client", func(dep string) bool {
		switch dep {
		case "github.com/hallpass/hallpass/dpop",
			"github.com/hallpass/hallpass/keys",
			"github.com/hallpass/hallpass/internal/strictjson",
			"github.com/hallpass/hallpass/problem":
			return true
		}
		return strings.HasPrefix(dep, "golang.org/x/")
	})
}
