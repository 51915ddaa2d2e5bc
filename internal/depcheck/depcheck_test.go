package depcheck_test

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// The checker lists this package's own dependencies: itself and nothing
// outside the standard library.
func TestAllowedSelf(t *testing.T) {
	const self = "github.com/hallpass/hallpass/internal/depcheck"
	deps := depcheck.Allowed(t, self, func(string) bool { return false })
	if len(deps) != 1 || deps[0] != self {
		t.Fatalf("deps = %q, want only %s", deps, self)
	}
}

// A refused dependency fails the test.
func TestAllowedRefuses(t *testing.T) {
	ft := &fakeT{TB: t}
	depcheck.Allowed(ft, "github.com/hallpass/hallpass/internal/strictjson", func(p string) bool {
		return !strings.HasSuffix(p, "/strictjson")
	})
	if ft.failed {
		t.Fatal("strictjson itself was checked against allow")
	}
	ft = &fakeT{TB: t}
	depcheck.Allowed(ft, "github.com/hallpass/hallpass/token", func(p string) bool {
		return !strings.HasSuffix(p, "/strictjson")
	})
	if !ft.failed {
		t.Fatal("token's dependency on strictjson was not refused")
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
