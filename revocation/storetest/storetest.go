package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/revocation"
)

// Config is what a store under test must honour.
type Config struct {
	// Now is the store's clock (a fake one the suite advances).
	Now func() time.Time
	// MaxEvents is the stream retention; 0 means the store's default.
	MaxEvents int
}

// Factory returns a fresh, empty store configured by cfg. It registers its
// own cleanup with t.
type Factory func(t *testing.T, cfg Config) revocation.Store

// Options tune the suite.
type Options struct {
	// StormSize is the number of revocations in the storm test (default
	// 100,000).
	StormSize int
}

// Lener is implemented by stores that can count their stored entries
// (expired ones not yet dropped included); the storm test then checks that
// the stored set, not only the snapshot, stays bounded.
type Lener interface{ Len() int }

// Clock is a fake clock, safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock {
	c := new(Clock)
	c.ns.Store(t.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

const ttl = revocation.DefaultMaxAccessLifetime + revocation.DefaultLeeway

func entry(t *testing.T, kind revocation.Kind, id string, now time.Time) revocation.Entry {
	t.Helper()
	e, err := revocation.NewEntry(kind, id, "test", now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Run runs the conformance suite against stores from f.
func Run(t *testing.T, f Factory, opts Options) {
	if opts.StormSize == 0 {
		opts.StormSize = 100_000
	}
	su := &suite{f: f, opts: opts}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Ping", su.testPing},
		{"Validate", su.testValidate},
		{"AddSnapshotFollow", su.testAddSnapshotFollow},
		{"LaterBeforeReplaces", su.testLaterBeforeReplaces},
		{"FollowWakesAtOnce", su.testFollowWakesAtOnce},
		{"CursorResume", su.testCursorResume},
		{"TrimmedCursorGone", su.testTrimmedCursorGone},
		{"Expiry", su.testExpiry},
		{"StormStaysBounded", su.testStormStaysBounded},
		{"ConcurrentAdds", su.testConcurrentAdds},
		{"CanceledContext", su.testCanceledContext},
	} {
		t.Run(c.name, c.fn)
	}
}

// suite is one run of the conformance suite.
type suite struct {
	f    Factory
	opts Options
}

// newStore opens a store on a fresh clock at t0.
func (su *suite) newStore(t *testing.T, maxEvents int) (revocation.Store, *Clock) {
	clk := NewClock(t0)
	return su.f(t, Config{Now: clk.Now, MaxEvents: maxEvents}), clk
}

func (su *suite) testPing(t *testing.T) {
	ctx := t.Context()
	s, _ := su.newStore(t, 0)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func (su *suite) testValidate(t *testing.T) {
	ctx := t.Context()
	s, _ := su.newStore(t, 0)
	for _, e := range []revocation.Entry{
		{},
		{Kind: "nope", ID: "x", Before: t0, Created: t0, Expires: t0.Add(ttl)},
		{Kind: revocation.KindDevice, Before: t0, Created: t0, Expires: t0.Add(ttl)},
		{Kind: revocation.KindAll, ID: "x", Before: t0, Created: t0},
		{Kind: revocation.KindKey, ID: "k", Before: t0, Created: t0, Expires: t0.Add(ttl)},
		{Kind: revocation.KindDevice, ID: "d", Before: t0, Created: t0},
	} {
		if _, err := s.Add(ctx, e); !errors.Is(err, revocation.ErrInvalidEntry) {
			t.Errorf("Add(%+v) = %v, want ErrInvalidEntry", e, err)
		}
	}
}

func (su *suite) testAddSnapshotFollow(t *testing.T) {
	ctx := t.Context()
	s, _ := su.newStore(t, 0)
	entries, cur0, err := s.Snapshot(ctx)
	if err != nil || len(entries) != 0 {
		t.Fatalf("empty Snapshot = %v, %v", entries, err)
	}
	d := entry(t, revocation.KindDevice, "dev-1", t0)
	got, err := s.Add(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got, d) {
		t.Fatalf("Add = %+v, want %+v", got, d)
	}
	entries, cur1, err := s.Snapshot(ctx)
	if err != nil || len(entries) != 1 || !equal(entries[0], d) {
		t.Fatalf("Snapshot = %+v, %v", entries, err)
	}
	evs, next, err := s.Follow(ctx, cur0, 10, 0)
	if err != nil || len(evs) != 1 || !equal(evs[0], d) || next != cur1 {
		t.Fatalf("Follow(cur0) = %+v, %q, %v; want the entry and %q", evs, next, err, cur1)
	}
	start := time.Now()
	evs, next, err = s.Follow(ctx, cur1, 10, 50*time.Millisecond)
	if err != nil || len(evs) != 0 || next != cur1 {
		t.Fatalf("Follow(cur1) = %+v, %q, %v; want nothing", evs, next, err)
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Errorf("Follow returned after %v, want it to block ~50ms", el)
	}
}

func (su *suite) testLaterBeforeReplaces(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 0)
	_, cur, _ := s.Snapshot(ctx)
	e1 := entry(t, revocation.KindAccount, "acct", clk.Now().Add(time.Minute))
	if _, err := s.Add(ctx, e1); err != nil {
		t.Fatal(err)
	}
	older := entry(t, revocation.KindAccount, "acct", clk.Now())
	got, err := s.Add(ctx, older)
	if err != nil || !equal(got, e1) {
		t.Fatalf("Add(older) = %+v, %v; want the later entry kept", got, err)
	}
	e2 := entry(t, revocation.KindAccount, "acct", clk.Now().Add(2*time.Minute))
	if got, err := s.Add(ctx, e2); err != nil || !equal(got, e2) {
		t.Fatalf("Add(later) = %+v, %v", got, err)
	}
	entries, _, _ := s.Snapshot(ctx)
	if len(entries) != 1 || !equal(entries[0], e2) {
		t.Fatalf("Snapshot = %+v, want only the latest", entries)
	}
	evs, _, err := s.Follow(ctx, cur, 100, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("Follow = %d events, %v; want 2 (the older add appends nothing)", len(evs), err)
	}
}

func (su *suite) testFollowWakesAtOnce(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 0)
	_, cur, _ := s.Snapshot(ctx)
	type res struct {
		evs []revocation.Entry
		err error
		at  time.Time
	}
	ch := make(chan res, 1)
	go func() {
		evs, _, err := s.Follow(ctx, cur, 10, 5*time.Second)
		ch <- res{evs, err, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	added := time.Now()
	if _, err := s.Add(ctx, entry(t, revocation.KindToken, "jti-1", clk.Now())); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil || len(r.evs) != 1 {
		t.Fatalf("Follow = %+v, %v", r.evs, r.err)
	}
	if lat := r.at.Sub(added); lat > time.Second {
		t.Fatalf("Follow woke %v after the Add, want at once", lat)
	}
	t.Logf("follow latency %v", r.at.Sub(added))
}

func (su *suite) testCursorResume(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 0)
	_, cur, _ := s.Snapshot(ctx)
	const n = 25
	for i := range n {
		if _, err := s.Add(ctx, entry(t, revocation.KindDevice, fmt.Sprintf("d%02d", i), clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < n {
		evs, next, err := s.Follow(ctx, cur, 4, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || len(evs) > 4 {
			t.Fatalf("Follow returned %d events", len(evs))
		}
		for _, e := range evs {
			got = append(got, e.ID)
		}
		cur = next
	}
	for i, id := range got {
		if want := fmt.Sprintf("d%02d", i); id != want {
			t.Fatalf("event %d = %s, want %s (in order, once)", i, id, want)
		}
	}
	if evs, _, err := s.Follow(ctx, cur, 4, 0); err != nil || len(evs) != 0 {
		t.Fatalf("Follow at the end = %d, %v", len(evs), err)
	}
}

func (su *suite) testTrimmedCursorGone(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 10)
	_, cur, _ := s.Snapshot(ctx)
	if _, err := s.Add(ctx, entry(t, revocation.KindDevice, "first", clk.Now())); err != nil {
		t.Fatal(err)
	}
	_, mid, _ := s.Snapshot(ctx)
	for i := range 50 {
		if _, err := s.Add(ctx, entry(t, revocation.KindDevice, fmt.Sprintf("d%d", i), clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []revocation.Cursor{cur, mid} {
		if _, _, err := s.Follow(ctx, c, 10, 0); !errors.Is(err, revocation.ErrCursorGone) {
			t.Fatalf("Follow(trimmed %q) = %v, want ErrCursorGone", c, err)
		}
	}
	entries, last, err := s.Snapshot(ctx)
	if err != nil || len(entries) != 51 {
		t.Fatalf("Snapshot = %d entries, %v; want 51 (trimming the stream keeps entries)", len(entries), err)
	}
	if evs, _, err := s.Follow(ctx, last, 10, 0); err != nil || len(evs) != 0 {
		t.Fatalf("Follow(snapshot cursor) = %d, %v", len(evs), err)
	}
}

func (su *suite) testExpiry(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 0)
	now := clk.Now()
	for _, e := range []revocation.Entry{
		entry(t, revocation.KindToken, "jti", now),
		entry(t, revocation.KindDevice, "dev", now),
		entry(t, revocation.KindAccount, "acct", now),
		entry(t, revocation.KindKey, "k4.pid.test", now),
		entry(t, revocation.KindAll, "", now),
	} {
		if _, err := s.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(ttl - time.Second)
	if entries, _, _ := s.Snapshot(ctx); len(entries) != 5 {
		t.Fatalf("before expiry: %d entries, want 5", len(entries))
	}
	clk.Advance(time.Second)
	// An Add drops what has expired.
	if _, err := s.Add(ctx, entry(t, revocation.KindAll, "", clk.Now())); err != nil {
		t.Fatal(err)
	}
	entries, _, _ := s.Snapshot(ctx)
	kinds := map[revocation.Kind]revocation.Entry{}
	for _, e := range entries {
		kinds[e.Kind] = e
	}
	if len(entries) != 2 || kinds[revocation.KindKey].ID == "" || kinds[revocation.KindAll].Before.Before(clk.Now().Truncate(time.Second)) {
		t.Fatalf("after expiry: %+v; want the key and the latest epoch only", entries)
	}
	if l, ok := s.(Lener); ok && l.Len() != 2 {
		t.Fatalf("stored %d entries after expiry, want 2", l.Len())
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	if entries, _, _ := s.Snapshot(ctx); len(entries) != 2 {
		t.Fatalf("a century later: %d entries, want the key and the epoch", len(entries))
	}
}

func (su *suite) testStormStaysBounded(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 1000)
	const short = 2 * time.Second
	peak := 0
	for i := range su.opts.StormSize {
		e, err := revocation.NewEntry(revocation.KindDevice, fmt.Sprintf("storm-%d", i), "", clk.Now(), short)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond) // 1,000 revocations a second
		if l, ok := s.(Lener); ok && i%1000 == 999 {
			peak = max(peak, l.Len())
		}
	}
	entries, _, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 2 s of revocations at 1,000/s are live.
	if len(entries) > 2100 {
		t.Fatalf("%d live entries after a storm of %d, want about 2,000", len(entries), su.opts.StormSize)
	}
	if l, ok := s.(Lener); ok {
		if peak > 4000 || l.Len() > 4000 {
			t.Fatalf("stored %d entries (peak %d) after a storm of %d, want about 2,000", l.Len(), peak, su.opts.StormSize)
		}
		t.Logf("storm of %d: %d live, %d stored, peak %d", su.opts.StormSize, len(entries), l.Len(), peak)
	}
}

func (su *suite) testConcurrentAdds(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 0)
	_, cur, _ := s.Snapshot(ctx)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e, _ := revocation.NewEntry(revocation.KindToken, fmt.Sprintf("w%d-%d", w, i), "", clk.Now(), ttl)
				if _, err := s.Add(ctx, e); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for {
		evs, next, err := s.Follow(ctx, cur, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if seen[e.ID] {
				t.Fatalf("event %s twice", e.ID)
			}
			seen[e.ID] = true
		}
		cur = next
	}
	if len(seen) != workers*each {
		t.Fatalf("followed %d events, want %d", len(seen), workers*each)
	}
}

func (su *suite) testCanceledContext(t *testing.T) {
	ctx := t.Context()
	s, clk := su.newStore(t, 0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Add(cctx, entry(t, revocation.KindToken, "j", clk.Now())); err == nil {
		t.Fatal("Add with a canceled context succeeded")
	}
	_, cur, _ := s.Snapshot(ctx)
	if _, _, err := s.Follow(cctx, cur, 10, time.Second); err == nil {
		t.Fatal("Follow with a canceled context succeeded")
	}
}

// equal compares entries by value (times with Equal).
func equal(a, b revocation.Entry) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.Reason == b.Reason &&
		a.Before.Equal(b.Before) && a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}
