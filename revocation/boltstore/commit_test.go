package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/boltstore"
)

// flipCtx is a context whose Err turns to DeadlineExceeded when expired is
// set but whose Done never closes: only the check inside the transaction
// can refuse its Add.
type flipCtx struct {
	context.Context
	expired atomic.Bool
}

func (c *flipCtx) Err() error {
	if c.expired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAddsShareCommit queues Adds behind a stalled commit: they share the
// next transaction, every one acknowledged is in the stream, and those
// whose caller gave up (in the queue, or when their turn came) are not.
func TestAddsShareCommit(t *testing.T) {
	ctx := context.Background()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "rev.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, cur, _ := s.Snapshot(ctx)
	add := func(ctx context.Context, id string) error {
		e, err := revocation.NewEntry(revocation.KindDevice, id, "", testNow, time.Hour)
		if err != nil {
			return err
		}
		_, err = s.Add(ctx, e)
		return err
	}

	release := boltstore.HoldWriter(s)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	commits, taken := boltstore.Commits(s), boltstore.Taken(s)
	results := map[string]chan error{}
	start := func(ctx context.Context, id string) {
		ch := make(chan error, 1)
		results[id] = ch
		n := boltstore.Queued(s)
		go func() { ch <- add(ctx, id) }()
		if id == "first" {
			waitFor(t, "the first Add to be taken", func() bool { return boltstore.Taken(s) == taken+1 })
			return
		}
		waitFor(t, "an Add to queue", func() bool { return boltstore.Queued(s) == n+1 })
	}
	start(ctx, "first")
	for i := range 5 {
		start(ctx, fmt.Sprintf("dev-%d", i))
	}
	later := &flipCtx{Context: ctx}
	start(later, "late")
	cancelled, cancel := context.WithCancel(ctx)
	start(cancelled, "cancelled")
	start(ctx, "last")

	cancel()
	if err := <-results["cancelled"]; !errors.Is(err, context.Canceled) || !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Add cancelled in the queue: %v, want ErrUnavailable and context.Canceled at once", err)
	}
	later.expired.Store(true)
	release()
	released = true
	for id, ch := range results {
		if id == "cancelled" {
			continue // answered above
		}
		switch err := <-ch; id {
		case "late":
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, revocation.ErrUnavailable) {
				t.Fatalf("Add whose deadline passed in the queue: %v", err)
			}
		default:
			if err != nil {
				t.Fatalf("Add %s: %v", id, err)
			}
		}
	}
	if got := boltstore.Commits(s) - commits; got != 2 {
		t.Fatalf("%d commits, want 2 (the stalled one, then one for the queued Adds)", got)
	}
	var ids []string
	evs, _, err := s.Follow(ctx, cur, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	want := []string{"first", "dev-0", "dev-1", "dev-2", "dev-3", "dev-4", "last"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("stream %v, want %v", ids, want)
	}
}

// BenchmarkAddParallel: revocations from many goroutines, fsync on,
// batched and one per transaction (MaxBatch 1).
func BenchmarkAddParallel(b *testing.B) {
	for _, mode := range []struct {
		name     string
		maxBatch int
	}{{"batched", 0}, {"serial", 1}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := boltstore.Open(filepath.Join(b.TempDir(), "rev.db"), boltstore.Options{MaxBatch: mode.maxBatch})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			commits := boltstore.Commits(s)
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e, err := revocation.NewEntry(revocation.KindDevice, fmt.Sprintf("dev-%d", n.Add(1)), "", time.Now(), time.Hour)
					if err == nil {
						_, err = s.Add(b.Context(), e)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			if c := boltstore.Commits(s) - commits; c > 0 {
				b.ReportMetric(float64(b.N)/float64(c), "ops/commit")
			}
		})
	}
}
