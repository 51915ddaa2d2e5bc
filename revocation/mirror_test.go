package revocation_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/boltstore"
	"github.com/hallpass/hallpass/revocation/storetest"
	"github.com/hallpass/hallpass/token"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ttl = revocation.DefaultMaxAccessLifetime + revocation.DefaultLeeway

// flaky wraps a store; while down, Snapshot and Follow fail as an outage.
type flaky struct {
	revocation.Store
	down      atomic.Bool
	snapshots atomic.Int64
}

var errDown = fmt.Errorf("%w: test outage", revocation.ErrUnavailable)

func (f *flaky) Snapshot(ctx context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	if f.down.Load() {
		return nil, "", errDown
	}
	f.snapshots.Add(1)
	return f.Store.Snapshot(ctx)
}

func (f *flaky) Follow(ctx context.Context, c revocation.Cursor, max int, block time.Duration) ([]revocation.Entry, revocation.Cursor, error) {
	if f.down.Load() {
		return nil, c, errDown
	}
	return f.Store.Follow(ctx, c, max, block)
}

func newBolt(t *testing.T, now func() time.Time, maxEvents int) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "rev.db"), boltstore.Options{Now: now, MaxEvents: maxEvents, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startMirror(t *testing.T, s revocation.Store, o revocation.MirrorOptions) *revocation.Mirror {
	t.Helper()
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	if o.Block == 0 {
		o.Block = 50 * time.Millisecond
	}
	m, err := revocation.NewMirror(s, o)
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("mirror did not load its snapshot")
	}
	return m
}

func add(t *testing.T, s revocation.Store, kind revocation.Kind, id string, now time.Time) revocation.Entry {
	t.Helper()
	e, err := revocation.NewEntry(kind, id, "test", now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	e, err = s.Add(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func claims(account, device, jti string, iat time.Time) *token.Claims {
	return &token.Claims{Subject: account, Device: device, ID: jti, IssuedAt: iat.Truncate(time.Second), Expiry: iat.Add(10 * time.Minute)}
}

const kid = keys.KeyID("k4.pid.test-key")

// eventually polls check until it returns true or d passes, and returns how
// long it took.
func eventually(t *testing.T, d time.Duration, what string, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !check() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func revoked(m *revocation.Mirror, c *token.Claims) bool {
	return errors.Is(m.CheckRevoked(context.Background(), kid, c), revocation.ErrRevoked)
}

func TestNewMirrorConfig(t *testing.T) {
	s := newBolt(t, nil, 0)
	for _, o := range []revocation.MirrorOptions{
		{MaxStaleness: -1},
		{MaxStaleness: time.Second, Block: 2 * time.Second},
		{MaxStaleness: time.Second, Block: 600 * time.Millisecond}, // an idle poll would make it stale
		{MinBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := revocation.NewMirror(s, o); !errors.Is(err, revocation.ErrConfig) {
			t.Errorf("NewMirror(%+v) = %v, want ErrConfig", o, err)
		}
	}
	if _, err := revocation.NewMirror(nil, revocation.MirrorOptions{}); !errors.Is(err, revocation.ErrConfig) {
		t.Errorf("NewMirror(nil) = %v", err)
	}
}

func TestMirrorPropagates(t *testing.T) {
	s := newBolt(t, nil, 0)
	m := startMirror(t, s, revocation.MirrorOptions{})
	now := time.Now()
	victim, other := claims("acct", "dev-1", "jti-1", now.Add(-time.Second)), claims("acct", "dev-2", "jti-2", now.Add(-time.Second))
	if err := m.CheckRevoked(t.Context(), kid, victim); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	add(t, s, revocation.KindDevice, "dev-1", time.Now())
	lat := eventually(t, time.Second, "device revocation reaches the mirror", func() bool { return revoked(m, victim) })
	t.Logf("propagation %v", lat)
	if err := m.CheckRevoked(t.Context(), kid, other); err != nil {
		t.Fatalf("the other device: %v", err)
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("Ready = %v", err)
	}
}

func TestMirrorResumesAfterDisconnect(t *testing.T) {
	f := &flaky{Store: newBolt(t, nil, 0)}
	m := startMirror(t, f, revocation.MirrorOptions{})
	f.down.Store(true)
	now := time.Now()
	for i := range 3 {
		add(t, f.Store, revocation.KindToken, fmt.Sprintf("jti-%d", i), now)
	}
	time.Sleep(30 * time.Millisecond)
	f.down.Store(false)
	for i := range 3 {
		c := claims("a", "d", fmt.Sprintf("jti-%d", i), now)
		eventually(t, 2*time.Second, "revocation made during the outage", func() bool { return revoked(m, c) })
	}
	if n := f.snapshots.Load(); n != 1 {
		t.Fatalf("%d snapshots, want 1: the mirror resumes from its cursor", n)
	}
}

func TestMirrorReloadsWhenTrimmed(t *testing.T) {
	f := &flaky{Store: newBolt(t, nil, 5)}
	m := startMirror(t, f, revocation.MirrorOptions{})
	f.down.Store(true)
	now := time.Now()
	for i := range 20 {
		add(t, f.Store, revocation.KindDevice, fmt.Sprintf("dev-%d", i), now)
	}
	f.down.Store(false)
	for i := range 20 {
		c := claims("a", fmt.Sprintf("dev-%d", i), "j", now.Add(-time.Second))
		eventually(t, 2*time.Second, "revocation trimmed from the stream", func() bool { return revoked(m, c) })
	}
	if n := f.snapshots.Load(); n != 2 {
		t.Fatalf("%d snapshots, want 2: the mirror reloads after ErrCursorGone", n)
	}
}

func TestMirrorStaleness(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failOpen bool
	}{
		{name: "FailClosed"},
		{name: "FailOpen", failOpen: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := storetest.NewClock(time.Now())
			f := &flaky{Store: newBolt(t, clk.Now, 0)}
			m := startMirror(t, f, revocation.MirrorOptions{Now: clk.Now, MaxStaleness: 5 * time.Second, FailOpen: tc.failOpen})
			add(t, f.Store, revocation.KindAccount, "banned", clk.Now())
			bad, good := claims("banned", "d1", "j1", clk.Now().Add(-time.Minute)), claims("fine", "d2", "j2", clk.Now())
			eventually(t, time.Second, "ban reaches the mirror", func() bool { return revoked(m, bad) })

			f.down.Store(true)
			clk.Advance(4 * time.Second)
			if err := m.CheckRevoked(t.Context(), kid, good); err != nil {
				t.Fatalf("within the bound: %v", err)
			}
			clk.Advance(2 * time.Second)
			err := m.CheckRevoked(t.Context(), kid, good)
			if tc.failOpen {
				if err != nil {
					t.Fatalf("stale, fail open: %v, want nil", err)
				}
			} else if !errors.Is(err, revocation.ErrStale) {
				t.Fatalf("stale, fail closed: %v, want ErrStale", err)
			}
			if !revoked(m, bad) {
				t.Fatal("a stale mirror forgot what it knows")
			}
			if err := m.Ready(); !errors.Is(err, revocation.ErrStale) {
				t.Fatalf("Ready while stale = %v", err)
			}
			f.down.Store(false)
			eventually(t, 2*time.Second, "fresh again", func() bool { return m.Ready() == nil })
			if err := m.CheckRevoked(t.Context(), kid, good); err != nil {
				t.Fatalf("fresh again: %v", err)
			}
		})
	}
}

func TestMirrorStaleBeforeFirstSnapshot(t *testing.T) {
	f := &flaky{Store: newBolt(t, nil, 0)}
	f.down.Store(true)
	m, err := revocation.NewMirror(f, revocation.MirrorOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Close()
	if err := m.CheckRevoked(t.Context(), kid, claims("a", "d", "j", time.Now())); !errors.Is(err, revocation.ErrStale) {
		t.Fatalf("CheckRevoked before any snapshot = %v, want ErrStale", err)
	}
	if m.Ready() == nil {
		t.Fatal("Ready before any snapshot")
	}
	if !m.LastHeard().IsZero() {
		t.Fatalf("LastHeard before any snapshot = %v, want zero", m.LastHeard())
	}
}

func TestMirrorLastHeard(t *testing.T) {
	clk := storetest.NewClock(time.Now())
	f := &flaky{Store: newBolt(t, clk.Now, 0)}
	// A short Block: a poll in flight when the store goes down returns
	// within the sleep below.
	m := startMirror(t, f, revocation.MirrorOptions{Now: clk.Now, MaxStaleness: 5 * time.Second, Block: 10 * time.Millisecond})
	if m.MaxStaleness() != 5*time.Second {
		t.Fatalf("MaxStaleness = %v", m.MaxStaleness())
	}
	eventually(t, time.Second, "heard at the clock's time", func() bool { return m.LastHeard().Equal(clk.Now()) })
	f.down.Store(true)
	time.Sleep(100 * time.Millisecond) // a poll already past the store finishes
	then := m.LastHeard()
	clk.Advance(3 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if got := m.LastHeard(); !got.Equal(then) {
		t.Fatalf("LastHeard moved to %v while the store was down (was %v)", got, then)
	}
	f.down.Store(false)
	eventually(t, 2*time.Second, "heard again", func() bool { return m.LastHeard().Equal(clk.Now()) })
}

func TestMirrorExpiry(t *testing.T) {
	clk := storetest.NewClock(time.Now())
	s := newBolt(t, clk.Now, 0)
	m := startMirror(t, s, revocation.MirrorOptions{Now: clk.Now, SweepEvery: time.Minute, MaxStaleness: time.Hour})
	iat := clk.Now().Add(-time.Second)
	add(t, s, revocation.KindDevice, "dev", clk.Now())
	add(t, s, revocation.KindToken, "jti", clk.Now())
	add(t, s, revocation.KindKey, string(kid), clk.Now())
	add(t, s, revocation.KindAll, "", iat.Add(-time.Hour))
	eventually(t, time.Second, "entries reach the mirror", func() bool { return m.Len() == 4 })
	dev := claims("a", "dev", "x", iat)
	if err := m.CheckRevoked(t.Context(), "k4.pid.other", dev); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("device: %v", err)
	}
	clk.Advance(ttl + time.Microsecond) // Before and Expires are rounded up to the µs
	// Expired entries no longer match, even before they are swept.
	if err := m.CheckRevoked(t.Context(), "k4.pid.other", dev); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	eventually(t, 2*time.Second, "expired entries swept", func() bool { return m.Len() == 2 })
	clk.Advance(100 * 365 * 24 * time.Hour)
	if err := m.CheckRevoked(t.Context(), kid, dev); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("a key revocation must not expire: %v", err)
	}
	if err := m.CheckRevoked(t.Context(), "k4.pid.other", claims("a", "d", "j", iat.Add(-2*time.Hour))); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("the global epoch must not expire: %v", err)
	}
}

func TestMirrorStartCloseNoLeak(t *testing.T) {
	s := newBolt(t, nil, 0)
	m, err := revocation.NewMirror(s, revocation.MirrorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	m.Start() // no second goroutine
	<-m.Synced()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Start() // restartable
	m.Close()
	s.Close() // the store's own committer goroutine is not the mirror's
	goleak.VerifyNone(t)
}

func TestMirrorRun(t *testing.T) {
	s := newBolt(t, nil, 0)
	m, err := revocation.NewMirror(s, revocation.MirrorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Synced()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// TestMirrorObserve: an entry handed to Observe is refused at once, while the
// mirror cannot hear from its store; the stream copy later changes nothing.
func TestMirrorObserve(t *testing.T) {
	fl := &flaky{Store: newBolt(t, nil, 0)}
	m := startMirror(t, fl, revocation.MirrorOptions{})
	now := time.Now()
	victim, other := claims("acct", "dev-1", "jti-1", now.Add(-time.Second)), claims("acct", "dev-2", "jti-2", now.Add(-time.Second))
	fl.down.Store(true) // the stream cannot deliver: only Observe can
	e, err := revocation.NewEntry(revocation.KindDevice, "dev-1", "test", now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	e, err = fl.Store.Add(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(e)
	if !revoked(m, victim) {
		t.Fatal("observed entry not applied at once")
	}
	if err := m.CheckRevoked(t.Context(), kid, other); err != nil {
		t.Fatalf("the other device: %v", err)
	}
	m.Observe(revocation.Entry{Kind: "bogus"}) // invalid entries are ignored
	fl.down.Store(false)
	eventually(t, 2*time.Second, "stream catches up", func() bool { return m.Ready() == nil && m.Len() == 1 })
	if !revoked(m, victim) {
		t.Fatal("stream copy undid the observed entry")
	}
}

// TestMirrorCheckSession: device and account entries stop a session whose
// refresh token predates them; token, key and all entries do not (after
// "all", devices re-prove their keys by refreshing).
func TestMirrorCheckSession(t *testing.T) {
	s := newBolt(t, nil, 0)
	m := startMirror(t, s, revocation.MirrorOptions{})
	before := time.Now().Add(-time.Minute)
	add(t, s, revocation.KindAll, "", time.Now())
	add(t, s, revocation.KindToken, "jti-x", time.Now())
	add(t, s, revocation.KindKey, string(kid), time.Now())
	add(t, s, revocation.KindDevice, "dev-gone", time.Now())
	add(t, s, revocation.KindAccount, "acct-gone", time.Now())
	eventually(t, 5*time.Second, "entries reach the mirror", func() bool {
		return m.CheckSession(t.Context(), "dev-x", "acct-gone", before) != nil // the last one added
	})
	tests := []struct {
		name        string
		dev, acct   string
		issued      time.Time
		wantRevoked bool
	}{
		{"untouched session despite all, token and key entries", "dev-1", "acct", before, false},
		{"device entry newer than the refresh token", "dev-gone", "acct", before, true},
		{"account entry newer than the refresh token", "dev-2", "acct-gone", before, true},
		{"refresh token newer than the device entry", "dev-gone", "acct", time.Now().Add(time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.CheckSession(t.Context(), tt.dev, tt.acct, tt.issued)
			if got := errors.Is(err, revocation.ErrRevoked); got != tt.wantRevoked || (!tt.wantRevoked && err != nil) {
				t.Fatalf("CheckSession = %v, want revoked %v", err, tt.wantRevoked)
			}
		})
	}
}
