package boltstore_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account/boltstore"
)

// TestHoldSweepIsBounded: a release (rename, deletion) reads at most
// SweepBatch holds to drop expired ones, however many are live.
// Reproduction before: the sweep read the whole bucket until it had found
// SweepBatch expired holds, so with few expired it read every live one,
// in the one writer, on every rename (about 140 ms with 200,000 holds:
// an account renaming in a loop, each rename adding a hold, slowed every
// write of the store). Releases from every hold's key still drop every
// expired hold and no live one.
func TestHoldSweepIsBounded(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "accounts.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 3 * boltstore.SweepBatch
	live, expired := names("live", n), names("expired", n)
	if err := boltstore.PutHolds(s, now.Add(time.Hour), live...); err != nil {
		t.Fatal(err)
	}
	if err := boltstore.PutHolds(s, now, expired...); err != nil { // ends at now: expired
		t.Fatal(err)
	}
	for _, name := range append(live, expired...) {
		visited, err := boltstore.SweepHolds(s, name, now)
		if err != nil {
			t.Fatal(err)
		}
		if visited > boltstore.SweepBatch {
			t.Fatalf("a sweep read %d holds, want at most %d", visited, boltstore.SweepBatch)
		}
	}
	if got := boltstore.Holds(s); got != n {
		t.Fatalf("%d holds left after sweeping from every key, want the %d live ones", got, n)
	}
}

// TestHoldSweepWrapsAround: with fewer holds than a batch, a sweep from
// any key reads each of them once.
func TestHoldSweepWrapsAround(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "accounts.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	held := names("held", 10)
	if err := boltstore.PutHolds(s, now.Add(time.Hour), held...); err != nil {
		t.Fatal(err)
	}
	for _, from := range append(held, "not held") {
		if visited, err := boltstore.SweepHolds(s, from, now); err != nil || visited != len(held) {
			t.Fatalf("sweep from %q read %d holds, %v; want %d", from, visited, err, len(held))
		}
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
