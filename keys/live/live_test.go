package live_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/live"
)

// memStore is a Watcher in memory: every Load and Update returns a fresh
// *keys.Ring, as the real stores do, and other writers are simulated with
// otherNode.
type memStore struct {
	mu       sync.Mutex
	entries  []keys.RingEntry
	version  uint64
	loadErr  error
	updErr   error
	watchErr chan error // Watch returns the next error sent here
	changes  chan uint64
	loads    int
}

func newMemStore(t *testing.T) *memStore {
	t.Helper()
	r, err := keys.NewRing(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &memStore{entries: r.Entries(), version: 1, changes: make(chan uint64, 16), watchErr: make(chan error, 1)}
}

func (m *memStore) Load(ctx context.Context) (*keys.Ring, error) {
	r, _, err := m.LoadVersion(ctx)
	return r, err
}

func (m *memStore) LoadVersion(context.Context) (*keys.Ring, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if m.loadErr != nil {
		return nil, 0, m.loadErr
	}
	r, err := keys.RestoreRing(m.entries)
	return r, m.version, err
}

func (m *memStore) Update(_ context.Context, fn func(*keys.Ring) error) (*keys.Ring, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.updErr != nil {
		return nil, m.updErr
	}
	r, err := keys.RestoreRing(m.entries)
	if err != nil {
		return nil, err
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	m.entries = r.Entries()
	m.version++
	return keys.RestoreRing(m.entries)
}

func (m *memStore) Watch(ctx context.Context, since uint64, fn func(uint64)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-m.watchErr:
			return err
		case v := <-m.changes:
			if v > since {
				since = v
				fn(v)
			}
		}
	}
}

// otherNode changes the stored ring as another issuer node would, and
// reports the change to watchers.
func (m *memStore) otherNode(t *testing.T, fn func(*keys.Ring) error) keys.KeyID {
	t.Helper()
	r, err := m.Update(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	v := m.version
	m.mu.Unlock()
	m.changes <- v
	return r.Current().ID()
}

func (m *memStore) current(t *testing.T) keys.KeyID {
	t.Helper()
	r, err := m.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r.Current().ID()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rotateLater rotates r keys.MinNextAge after the clock's time and moves
// the clock there: the next key is old enough to sign (keys.ErrNextTooNew).
func (c *clock) rotateLater(r *keys.Ring) error {
	c.Add(keys.MinNextAge)
	return r.Rotate(nil, c.Now())
}

func TestOpenRotateRevoke(t *testing.T) {
	ctx := context.Background()
	st := newMemStore(t)
	l, err := live.Open(ctx, st, live.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	first := l.Current().ID()
	if first != st.current(t) {
		t.Fatal("serves another key than the store's")
	}
	if _, status, ok := l.Lookup(first); !ok || status != keys.StatusCurrent {
		t.Fatalf("Lookup(current) = %v %v", status, ok)
	}

	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Current().ID() == first || l.Current().ID() != st.current(t) {
		t.Fatal("rotation not served, or not stored")
	}
	if _, status, _ := l.Lookup(first); status != keys.StatusRetired {
		t.Fatalf("old current is %v, want retired", status)
	}

	// Revoking the current key rotates first: the ring keeps a signer, and
	// the key set lists the revoked kid at once.
	cur := l.Current().ID()
	if err := l.Revoke(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if l.Current() == nil || l.Current().ID() == cur {
		t.Fatal("revoked key still signs")
	}
	ks := l.KeySet("https://issuer.example")
	if len(ks.Revoked) != 1 || ks.Revoked[0] != cur {
		t.Fatalf("key set revoked = %v", ks.Revoked)
	}
	for _, k := range ks.Keys {
		if k.Kid == cur {
			t.Fatal("revoked key still published as usable")
		}
	}
	if err := l.Revoke(ctx, cur); !errors.Is(err, keys.ErrKeyRevoked) {
		t.Fatalf("revoke twice: %v", err)
	}
	if err := l.Revoke(ctx, keys.KeyID("k4.pid.nope")); !errors.Is(err, keys.ErrKeyNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if ks := l.KeySet("https://issuer.example"); len(ks.Keys) != 3 || len(ks.Revoked) != 1 {
		t.Fatalf("key set %+v, want current, next and retired keys and one revoked id", ks)
	}
}

// TestStoreRefusalNotServed: a change the store did not keep is not served.
func TestStoreRefusalNotServed(t *testing.T) {
	ctx := context.Background()
	st := newMemStore(t)
	l, err := live.Open(ctx, st, live.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := l.Current().ID()
	st.updErr = errors.New("store down")
	if err := l.Rotate(ctx); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("Rotate = %v", err)
	}
	if err := l.Revoke(ctx, before); err == nil {
		t.Fatal("Revoke succeeded with the store down")
	}
	if l.Current().ID() != before {
		t.Fatal("served a change the store refused")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := live.Open(ctx, nil, live.Options{}); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := live.Follow(ctx, nil, live.Options{}); err == nil {
		t.Fatal("nil watcher accepted")
	}
	st := newMemStore(t)
	st.loadErr = errors.New("no ring")
	if _, err := live.Open(ctx, st, live.Options{}); err == nil {
		t.Fatal("Open without a ring")
	}
	if _, err := live.Follow(ctx, st, live.Options{}); err == nil {
		t.Fatal("Follow without a ring")
	}
}

// TestFollow: another node's rotation is served after the store reports
// it; a failed reload keeps the last ring; a failed Watch is retried; Close
// stops the goroutine.
func TestFollow(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	st := newMemStore(t)
	clk := &clock{t: time.Now().UTC()}
	var logs logbuf.Buffer
	l, err := live.Follow(ctx, st, live.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), RetryDelay: time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	want := st.otherNode(t, clk.rotateLater)
	eventually(t, "other node's rotation served", func() bool { return l.Current().ID() == want })

	// A reload that fails keeps the ring last served, and says so.
	st.mu.Lock()
	st.loadErr = errors.New("unavailable")
	st.mu.Unlock()
	st.otherNode(t, clk.rotateLater)
	eventually(t, "reload failure logged", func() bool { return strings.Contains(logs.String(), "reloading the key ring failed") })
	if l.Current().ID() != want {
		t.Fatal("a failed reload changed the served ring")
	}
	st.mu.Lock()
	st.loadErr = nil
	st.mu.Unlock()

	// Watch fails: logged, watched again, and the next change is seen.
	st.watchErr <- errors.New("connection reset")
	eventually(t, "watch failure logged", func() bool { return strings.Contains(logs.String(), "watching the key ring failed") })
	want = st.otherNode(t, clk.rotateLater)
	eventually(t, "rotation after a watch failure served", func() bool { return l.Current().ID() == want })

	// Own changes are served at once, not only after the report.
	clk.Add(keys.MinNextAge)
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Current().ID() != st.current(t) {
		t.Fatal("own rotation not served at once")
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if l.Current() == nil {
		t.Fatal("a closed Ring must still serve its last ring")
	}
}

// TestConcurrent: readers never see a torn ring while changes and reloads
// run (go test -race).
func TestConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	st := newMemStore(t)
	clk := &clock{t: time.Now().UTC()}
	l, err := live.Follow(ctx, st, live.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cur := l.Current()
				if cur == nil {
					t.Error("no current key")
					return
				}
				l.KeySet("https://issuer.example")
				l.Lookup(cur.ID())
			}
		}()
	}
	for range 20 {
		clk.Add(keys.MinNextAge)
		if err := l.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		st.otherNode(t, clk.rotateLater)
	}
	close(stop)
	wg.Wait()
	eventually(t, "last change served", func() bool { return l.Current().ID() == st.current(t) })
}

// TestFileStore: *filestore.Store is a Store; a change through the Ring is
// on disk for the next process.
func TestFileStore(t *testing.T) {
	ctx := context.Background()
	w, _ := keys.GenerateWrappingKey(nil)
	prot, _ := filestore.WrapKey(w)
	dir := t.TempDir()
	st, _ := filestore.New(dir, prot, nil)
	if _, err := st.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	l, err := live.Open(ctx, st, live.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := live.Open(ctx, st, live.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Current().ID() != l.Current().ID() {
		t.Fatal("the rotation did not reach the store")
	}
}

// TestFollowFileStore: a Ring following a key directory serves a
// rotation made through another Store on it (`hallpass keys rotate` in
// another process) without a restart, and Close stops its goroutine.
func TestFollowFileStore(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	w, _ := keys.GenerateWrappingKey(nil)
	prot, _ := filestore.WrapKey(w)
	dir := t.TempDir()
	st, _ := filestore.New(dir, prot, nil)
	st.PollInterval = 5 * time.Millisecond
	if _, err := st.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	l, err := live.Follow(ctx, st, live.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, _ := filestore.New(dir, prot, nil)
	r, err := other.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, time.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	want := r.Current().ID()
	eventually(t, "another process's rotation served", func() bool { return l.Current().ID() == want })
}
