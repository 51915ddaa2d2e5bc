package revocation_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/storetest"
)

func authenticator(t testing.TB) *revocation.EntryAuthenticator {
	t.Helper()
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := revocation.NewEntryAuthenticator(w)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// refusals records OnRefused calls and the log.
type refusals struct {
	mu    sync.Mutex
	kinds []revocation.Kind
	log   bytes.Buffer
}

func (r *refusals) hook(k revocation.Kind) { r.mu.Lock(); r.kinds = append(r.kinds, k); r.mu.Unlock() }
func (r *refusals) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(p)
}
func (r *refusals) opts() revocation.AuthOptions {
	return revocation.AuthOptions{OnRefused: r.hook, Logger: slog.New(slog.NewTextHandler(r, nil))}
}

func TestAuthenticatedConformance(t *testing.T) {
	a := authenticator(t)
	storetest.Run(t, func(t *testing.T, cfg storetest.Config) revocation.Store {
		s, err := revocation.Authenticated(newBolt(t, cfg.Now, cfg.MaxEvents), a, revocation.AuthOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{StormSize: 10_000})
}

// TestForgedEntriesRefused is issue 11, finding 1 (its revocation part):
// key and all entries were not authenticated, so whoever can write to the
// store could add an all entry with a Before far in the future (every
// token refused, for good: all entries never expire) or a key entry for
// the current key. Now a key or all entry needs a MAC under a key derived
// from the wrapping key: a forged, altered or foreign one is dropped
// before any mirror applies it, and reported.
func TestForgedEntriesRefused(t *testing.T) {
	now := time.Now()
	raw := newBolt(t, nil, 0)
	a := authenticator(t)
	rf := &refusals{}
	st, err := revocation.Authenticated(raw, a, rf.opts())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	legit, err := st.Add(ctx, mustEntry(t, revocation.KindKey, "k4.pid.legit", now))
	if err != nil || legit.MAC == "" {
		t.Fatalf("Add = %+v, %v; want a sealed entry", legit, err)
	}
	forever, _ := revocation.NewEntry(revocation.KindAll, "", "", now.Add(100*365*24*time.Hour), ttl)
	renamed := legit
	renamed.ID = "k4.pid.current"
	foreign := authenticator(t).Seal(mustEntry(t, revocation.KindKey, "k4.pid.other", now))
	for _, e := range []revocation.Entry{forever, renamed, foreign} {
		if _, err := raw.Add(ctx, e); err != nil { // the writer without the key
			t.Fatal(err)
		}
	}
	m := startMirror(t, st, revocation.MirrorOptions{})
	if err := m.CheckRevoked(ctx, "k4.pid.current", claims("acc", "dev", "jti", now)); err != nil {
		t.Fatalf("a fresh token of the current key is refused: %v", err)
	}
	if err := m.CheckRevoked(ctx, "k4.pid.legit", claims("acc", "dev", "jti", now)); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("the sealed key entry is not applied: %v", err)
	}
	rf.mu.Lock()
	n, log := len(rf.kinds), rf.log.String()
	rf.mu.Unlock()
	if n < 3 || !strings.Contains(log, "revocation entry refused") || strings.Contains(log, "k4.pid.") {
		t.Fatalf("%d refusals reported, log %q", n, log)
	}

	// The forged all entry, with its later Before, wins in the store over
	// a real one: Add says so instead of pretending it was stored.
	if _, err := st.Add(ctx, mustEntry(t, revocation.KindAll, "", now)); !errors.Is(err, revocation.ErrUnauthenticated) {
		t.Fatalf("Add behind a forged entry: %v, want ErrUnauthenticated", err)
	}
}

func mustEntry(t *testing.T, kind revocation.Kind, id string, now time.Time) revocation.Entry {
	t.Helper()
	e, err := revocation.NewEntry(kind, id, "test", now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEntryAuthenticator(t *testing.T) {
	a := authenticator(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 1500, time.UTC) // sub-microsecond: normalised first
	for _, tc := range []struct {
		name   string
		entry  revocation.Entry
		change func(*revocation.Entry)
		ok     bool
	}{
		{name: "key", entry: mustEntry(t, revocation.KindKey, "k4.pid.x", now), ok: true},
		{name: "all", entry: mustEntry(t, revocation.KindAll, "", now), ok: true},
		{name: "device needs none", entry: mustEntry(t, revocation.KindDevice, "dev_x", now), change: func(e *revocation.Entry) { e.MAC = "" }, ok: true},
		{name: "key without mac", entry: mustEntry(t, revocation.KindKey, "k4.pid.x", now), change: func(e *revocation.Entry) { e.MAC = "" }},
		{name: "other id", entry: mustEntry(t, revocation.KindKey, "k4.pid.x", now), change: func(e *revocation.Entry) { e.ID = "k4.pid.y" }},
		{name: "later before", entry: mustEntry(t, revocation.KindAll, "", now), change: func(e *revocation.Entry) { e.Before = e.Before.Add(time.Hour) }},
		{name: "other reason", entry: mustEntry(t, revocation.KindAll, "", now), change: func(e *revocation.Entry) { e.Reason = "x" }},
		{name: "kind changed", entry: mustEntry(t, revocation.KindAll, "", now), change: func(e *revocation.Entry) { e.Kind = revocation.KindKey; e.ID = "k4.pid.x" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := a.Seal(tc.entry)
			if err := e.Validate(); err != nil {
				t.Fatal(err)
			}
			if tc.change != nil {
				tc.change(&e)
			}
			if got := a.Verify(e); got != tc.ok {
				t.Fatalf("Verify = %v, want %v", got, tc.ok)
			}
		})
	}
	if s := a.String(); strings.ContainsAny(s, "0123456789") && !strings.Contains(s, "redacted") {
		t.Fatalf("String() = %q", s)
	}
	bad := mustEntry(t, revocation.KindKey, "k4.pid.x", now)
	bad.MAC = "not a mac"
	if err := bad.Validate(); !errors.Is(err, revocation.ErrInvalidEntry) {
		t.Fatalf("Validate of a malformed MAC: %v", err)
	}
}

// vanishing is a store from which entries are deleted behind the mirror's
// back: once gone is set, its snapshot lacks every key and all entry and
// its stream is trimmed (the mirror must reload the snapshot).
type vanishing struct {
	revocation.Store
	gone     chan struct{}
	reload   sync.Once
	reloaded chan struct{} // closed at the first Follow after the reload: load is done
	signal   sync.Once
}

func (v *vanishing) Snapshot(ctx context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	es, c, err := v.Store.Snapshot(ctx)
	select {
	case <-v.gone:
	default:
		return es, c, err
	}
	out := es[:0]
	for _, e := range es {
		if e.Kind != revocation.KindKey && e.Kind != revocation.KindAll {
			out = append(out, e)
		}
	}
	return out, c, err
}

func (v *vanishing) Follow(ctx context.Context, c revocation.Cursor, max int, block time.Duration) ([]revocation.Entry, revocation.Cursor, error) {
	select {
	case <-v.gone:
		trimmed := false
		v.reload.Do(func() { trimmed = true })
		if trimmed {
			return nil, c, revocation.ErrCursorGone
		}
		v.signal.Do(func() { close(v.reloaded) })
	default:
	}
	return v.Store.Follow(ctx, c, max, block)
}

// TestMirrorKeepsKeyAndAllEntries: a MAC cannot stop a writer to the
// store from deleting entries, but a mirror that has seen a key entry or
// an all epoch keeps it when a later snapshot lacks it.
func TestMirrorKeepsKeyAndAllEntries(t *testing.T) {
	now := time.Now()
	v := &vanishing{Store: newBolt(t, nil, 0), gone: make(chan struct{}), reloaded: make(chan struct{})}
	ctx := context.Background()
	add(t, v, revocation.KindKey, "k4.pid.gone", now)
	add(t, v, revocation.KindAll, "", now)
	m := startMirror(t, v, revocation.MirrorOptions{})
	old := claims("acc", "dev", "jti", now.Add(-time.Minute))
	close(v.gone)
	select {
	case <-v.reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("the mirror did not reload its snapshot")
	}
	if err := m.CheckRevoked(ctx, "k4.pid.gone", claims("acc", "dev", "jti", now.Add(time.Minute))); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("the deleted key entry is forgotten: %v", err)
	}
	if err := m.CheckRevoked(ctx, "k4.pid.other", old); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("the deleted all entry is forgotten: %v", err)
	}
}
