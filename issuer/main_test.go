package issuer_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The issuer starts no goroutine of its own that outlives a request (a
// store call abandoned at its timeout ends with the call); the tests' HTTP
// servers and Redis clients are closed in t.Cleanup.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
