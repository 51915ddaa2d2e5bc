package keys_test

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// TestDependencies: keys and the file store depend on the standard
// library, golang.org/x/..., each other and internal/filelock only (no Redis, bbolt or Echo:
// a verifier or a single-node issuer does not pull them in); the live ring
// adds the refresh-token codec (package refresh and go-paseto, which it
// rekeys as the store changes) and nothing of a store; the Redis ring
// store adds go-redis, and shares nothing with the file store but the keys
// types.
func TestDependencies(t *testing.T) {
	const base = "github.com/hallpass/hallpass/keys"
	core := func(dep string) bool {
		return strings.HasPrefix(dep, "golang.org/x/") || dep == base || dep == base+"/filestore" ||
			dep == "github.com/hallpass/hallpass/internal/filelock" // the standard library only
	}
	for _, tc := range []struct {
		pkg   string
		allow func(string) bool
	}{
		{base, core},
		{base + "/filestore", core},
		{base + "/live", func(dep string) bool {
			return dep != base+"/filestore" && (core(dep) || dep == "github.com/hallpass/hallpass/refresh" ||
				strings.HasPrefix(dep, "aidanwoods.dev/go-paseto") || strings.HasPrefix(dep, "aidanwoods.dev/go-result/"))
		}},
		{base + "/redisring", func(dep string) bool {
			return dep != base+"/filestore" && dep != base+"/live" &&
				!strings.Contains(dep, "labstack/echo") && !strings.Contains(dep, "bbolt")
		}},
	} {
		t.Run(strings.TrimPrefix(tc.pkg, "github.com/hallpass/hallpass/"), func(t *testing.T) {
			t.Logf("non-standard dependencies: %v", depcheck.Allowed(t, tc.pkg, tc.allow))
		})
	}
}
