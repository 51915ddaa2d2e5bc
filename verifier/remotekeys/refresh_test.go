package remotekeys_test

import (
	"testing"
	"time"
)

// TestBackoffDoesNotSpin: the retry backoff doubled on every failed fetch
// and was only bounded when it was used (min(backoff, MinRefresh)), so
// after 34 failures in a row (some 17 minutes of an unreachable issuer at
// the default MinRefresh) it overflowed to a negative and then to a zero
// duration: the refresh goroutine fetched in a tight loop, a CPU spin and
// a flood of requests at an issuer that was already down.
func TestBackoffDoesNotSpin(t *testing.T) {
	is := newIssuer(t, true)
	is.cache = "no-store" // refresh every MinRefresh
	cfg := is.config()
	cfg.MinRefresh = 5 * time.Millisecond
	ks := is.keySet(cfg)
	is.down.Store(true)

	// 50 failures at MinRefresh apart take 250 ms; a second is 200 of
	// them, and more than that is a spin.
	start := ks.Fetches()
	time.Sleep(time.Second)
	if n := ks.Fetches() - start; n > 300 {
		t.Fatalf("%d fetches in a second with MinRefresh 5 ms: the backoff overflowed", n)
	}
}
