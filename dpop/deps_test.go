package dpop

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/depcheck"
)

// A verifier that imports dpop must not pull in Redis, Echo or go-jose (used
// here only by the tests): the Redis cache lives in dpop/redisreplay.
func TestDeps(t *testing.T) {
	depcheck.Allowed(t, "github.com/hallpass/hallpass/dpop", func(dep string) bool {
		for _, banned := range []string{"github.com/redis/", "github.com/labstack/", "github.com/go-jose/", "github.com/hallpass/hallpass/internal/redistest"} {
			if strings.HasPrefix(dep, banned) {
				return false
			}
		}
		return true
	})
}
