package revocation_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/storetest"
)

// slowStore is a store whose Snapshot and first Follow take time on the
// test clock (a long scan, a blocking read) and whose later Follows fail,
// as if the store went down right after.
type slowStore struct {
	clk           *storetest.Clock
	snapshotTakes time.Duration
	followTakes   time.Duration
	firstFollow   []revocation.Entry // nil: every Follow fails
	follows       atomic.Int64
}

func (s *slowStore) Add(_ context.Context, e revocation.Entry) (revocation.Entry, error) {
	return e, nil
}

func (s *slowStore) Snapshot(context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	s.clk.Advance(s.snapshotTakes)
	return nil, "0", nil
}

func (s *slowStore) Follow(_ context.Context, c revocation.Cursor, max int, _ time.Duration) ([]revocation.Entry, revocation.Cursor, error) {
	if s.follows.Add(1) == 1 && s.firstFollow != nil {
		s.clk.Advance(s.followTakes)
		return s.firstFollow[:min(max, len(s.firstFollow))], "1", nil
	}
	return nil, c, errDown
}

func (s *slowStore) Ping(context.Context) error { return nil }

// TestMirrorHeardOnlyWhatItProved: a mirror counts itself fresh from when
// its store proved it current, no later. A snapshot is as of when it was
// asked for, not when its last page arrived (an entry added during a long
// scan may be missing from it), a Follow as of when it was asked for, not
// when its reply arrived; a Follow that returned a full batch does not
// show that nothing more is waiting. If the store then goes down, the
// mirror must go stale MaxStaleness after that proof.
func TestMirrorHeardOnlyWhatItProved(t *testing.T) {
	const bound, batch = 5 * time.Second, 2
	events := func(n int) []revocation.Entry {
		out := make([]revocation.Entry, n)
		for i := range out {
			out[i], _ = revocation.NewEntry(revocation.KindToken, fmt.Sprintf("jti-%d", i), "", time.Now(), ttl)
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		snapshotTakes time.Duration
		followTakes   time.Duration
		firstFollow   []revocation.Entry
		after         time.Duration // clock advance after the reads
		wantStale     bool
	}{
		{name: "quick snapshot", snapshotTakes: time.Second, after: 3 * time.Second, wantStale: false},
		{name: "snapshot longer than the bound", snapshotTakes: 6 * time.Second, wantStale: true},
		{name: "snapshot, then the bound from its start", snapshotTakes: 3 * time.Second, after: 3 * time.Second, wantStale: true},
		{name: "partial batch", followTakes: 2 * time.Second, firstFollow: events(batch - 1), after: 2 * time.Second, wantStale: false},
		// A reply held on the network (up to the read timeout) proves the
		// store as of when Redis answered, not when it arrived: the
		// bound counts from when the Follow was asked for.
		{name: "partial batch, then the bound from its start", followTakes: 4 * time.Second, firstFollow: events(batch - 1), after: 2 * time.Second, wantStale: true},
		// An empty reply proves the store as of Block (1 s) after it was
		// asked for at the earliest.
		{name: "empty poll", followTakes: 4 * time.Second, firstFollow: events(0), after: 3 * time.Second, wantStale: true},
		{name: "empty poll, Block after its start", followTakes: 4 * time.Second, firstFollow: events(0), after: 2 * time.Second, wantStale: false},
		{name: "full batch", followTakes: 4 * time.Second, firstFollow: events(batch), after: 2 * time.Second, wantStale: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := storetest.NewClock(time.Now())
			s := &slowStore{clk: clk, snapshotTakes: tc.snapshotTakes, followTakes: tc.followTakes, firstFollow: tc.firstFollow}
			m := startMirror(t, s, revocation.MirrorOptions{Now: clk.Now, MaxStaleness: bound, Batch: batch, Block: time.Second})
			// The second Follow starts once the first one's events are
			// applied.
			eventually(t, 2*time.Second, "first Follow applied", func() bool { return s.follows.Load() >= 2 })
			clk.Advance(tc.after)
			err := m.CheckRevoked(t.Context(), kid, claims("a", "d", "fresh", clk.Now()))
			if stale := errors.Is(err, revocation.ErrStale); stale != tc.wantStale || !stale && err != nil {
				t.Fatalf("CheckRevoked = %v, want stale %v", err, tc.wantStale)
			}
		})
	}
}

// TestMirrorClockStepBack: the mirror's staleness is the time since it
// last heard from its store, read on its clock. A wall clock stepped back
// (NTP, a VM resumed, an operator) while the store is out of reach made
// that age negative, so the mirror vouched for tokens for as long as the
// step (an hour here) plus MaxStaleness instead of MaxStaleness. A time
// before the last proof is no proof of freshness: the mirror is stale
// until it hears from the store again, which a healthy store answers
// within one poll.
func TestMirrorClockStepBack(t *testing.T) {
	const bound = 5 * time.Second
	clk := storetest.NewClock(time.Now())
	s := &slowStore{clk: clk} // every Follow fails: the store is out of reach
	m := startMirror(t, s, revocation.MirrorOptions{Now: clk.Now, MaxStaleness: bound})
	eventually(t, 2*time.Second, "a Follow failed", func() bool { return s.follows.Load() >= 1 })
	clk.Advance(-time.Hour)
	c := claims("a", "d", "fresh", clk.Now().Add(-time.Minute))
	if err := m.CheckRevoked(t.Context(), kid, c); !errors.Is(err, revocation.ErrStale) {
		t.Errorf("CheckRevoked after the clock stepped back, store out of reach: %v, want ErrStale", err)
	}
	if err := m.CheckSession(t.Context(), "d", "a", c.IssuedAt); !errors.Is(err, revocation.ErrStale) {
		t.Errorf("CheckSession after the clock stepped back: %v, want ErrStale", err)
	}
	if err := m.Ready(); !errors.Is(err, revocation.ErrStale) {
		t.Errorf("Ready after the clock stepped back: %v, want ErrStale", err)
	}

	// A store that answers makes the mirror fresh again at its next poll.
	bclk := storetest.NewClock(time.Now())
	hm := startMirror(t, newBolt(t, bclk.Now, 0), revocation.MirrorOptions{Now: bclk.Now, MaxStaleness: bound})
	bclk.Advance(-time.Hour)
	eventually(t, 10*time.Second, "fresh again after the step", func() bool { return hm.Ready() == nil })
}
