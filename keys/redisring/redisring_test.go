package redisring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func wrapKey(t testing.TB) *keys.WrappingKey {
	t.Helper()
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// newStore opens a store with its own client (as another node would).
func newStore(t testing.TB, addr string, w *keys.WrappingKey, opts redisring.Options) *redisring.Store {
	t.Helper()
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 20 * time.Second // behaviour, not latency: -race on a loaded machine
	}
	s, err := redisring.New(newClient(t, addr), w, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ids(r *keys.Ring) []string {
	var out []string
	for _, e := range r.Entries() {
		out = append(out, string(e.ID())+"/"+string(e.Status))
	}
	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	good := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	bad := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { good.Close(); bad.Close() })
	zero, _ := keys.WrappingKeyFromBytes(make([]byte, 32))
	w := wrapKey(t)
	tests := []struct {
		name string
		c    redis.UniversalClient
		w    *keys.WrappingKey
		opts redisring.Options
		ok   bool
	}{
		{name: "ok", c: good, w: w, ok: true},
		{name: "nil client", c: nil, w: w},
		{name: "nil wrapping key (plaintext)", c: good, w: nil},
		{name: "zero wrapping key", c: good, w: zero},
		{name: "no ContextTimeoutEnabled", c: bad, w: w},
		{name: "brace in prefix", c: good, w: w, opts: redisring.Options{Prefix: "a{b"}},
		{name: "negative timeout", c: good, w: w, opts: redisring.Options{OpTimeout: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redisring.New(tt.c, tt.w, tt.opts)
			if (err == nil) != tt.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestInitLoadRoundTrip(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	s := newStore(t, srv.Addr(), w, redisring.Options{})

	if _, err := s.Load(ctx); !errors.Is(err, redisring.ErrNotFound) {
		t.Fatalf("Load before Init: %v, want ErrNotFound", err)
	}
	if _, err := s.LoadLocal(ctx); !errors.Is(err, redisring.ErrNotFound) {
		t.Fatalf("LoadLocal before Init: %v, want ErrNotFound", err)
	}
	if ok, err := s.Exists(ctx); err != nil || ok {
		t.Fatalf("Exists before Init = %v, %v", ok, err)
	}
	created, err := s.Init(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Init(ctx, t0); !errors.Is(err, redisring.ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	if ok, err := s.Exists(ctx); err != nil || !ok {
		t.Fatalf("Exists after Init = %v, %v", ok, err)
	}

	// Another node with the same wrapping key reads the same ring.
	other := newStore(t, srv.Addr(), w, redisring.Options{})
	got, v, err := other.LoadVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != 1 {
		t.Errorf("version after Init = %d, want 1", v)
	}
	want := created.Entries()
	have := got.Entries()
	if len(have) != len(want) {
		t.Fatalf("loaded %d entries, want %d", len(have), len(want))
	}
	for i := range want {
		if !have[i].Secret.Equal(want[i].Secret) || !have[i].Public.Equal(want[i].Public) ||
			have[i].Status != want[i].Status || !have[i].Created.Equal(want[i].Created) ||
			!have[i].Activated.Equal(want[i].Activated) {
			t.Errorf("entry %d differs: %v vs %v", i, have[i].ID(), want[i].ID())
		}
	}
	if !got.Current().Equal(created.Current()) {
		t.Error("current key differs")
	}

	pub, err := other.LoadPublic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range pub.Entries() {
		if e.Secret != nil {
			t.Error("LoadPublic returned a secret")
		}
	}
	if fmt.Sprint(ids(pub)) != fmt.Sprint(ids(created)) {
		t.Errorf("public ring %v, want %v", ids(pub), ids(created))
	}

	locals, err := other.LoadLocal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(locals) != 1 || !locals[0].Created.Equal(t0) || !locals[0].Retired.IsZero() {
		t.Fatalf("local keys after Init: %+v", locals)
	}
}

func TestInitRace(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	w := wrapKey(t)
	const n = 8
	var okN, existsN atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		s := newStore(t, srv.Addr(), w, redisring.Options{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Init(context.Background(), t0)
			switch {
			case err == nil:
				okN.Add(1)
			case errors.Is(err, redisring.ErrExists):
				existsN.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if okN.Load() != 1 || existsN.Load() != n-1 {
		t.Fatalf("Init race: %d created, %d ErrExists; want 1 and %d", okN.Load(), existsN.Load(), n-1)
	}
}

// dump returns every key name and value in Redis, as KEYS * with GET or
// HGETALL would show them to whoever copies the database.
func dump(t *testing.T, addr string) []byte {
	t.Helper()
	ctx := context.Background()
	c := newClient(t, addr)
	names, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("empty dump")
	}
	var b bytes.Buffer
	for _, k := range names {
		b.WriteString(k + "\n")
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "string":
			v, err := c.Get(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(v + "\n")
		case "hash":
			m, err := c.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for f, v := range m {
				b.WriteString(f + "=" + v + "\n")
			}
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
	}
	return b.Bytes()
}

// forms returns the encodings a leaked key could take.
func forms(raw []byte) [][]byte {
	return [][]byte{
		raw,
		[]byte(hex.EncodeToString(raw)),
		[]byte(base64.RawURLEncoding.EncodeToString(raw)),
		[]byte(base64.StdEncoding.EncodeToString(raw)),
		[]byte(base64.RawStdEncoding.EncodeToString(raw)),
	}
}

func TestDumpHoldsNoUsableKey(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	s := newStore(t, srv.Addr(), w, redisring.Options{})
	first, err := s.Init(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, t0.Add(time.Hour)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RotateLocal(ctx, t0.Add(time.Hour), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.RotatePepper(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d := dump(t, srv.Addr())
	for _, bad := range []string{"k4.secret.", "k4.local."} {
		if bytes.Contains(d, []byte(bad)) {
			t.Errorf("dump holds a plaintext %q key", bad)
		}
	}
	if !bytes.Contains(d, []byte("k4.secret-wrap.pie.")) || !bytes.Contains(d, []byte("k4.local-wrap.pie.")) {
		t.Error("dump holds no wrapped keys: test is not looking at the ring")
	}
	// Every signing key's secret, the retired one's included (the ring
	// keeps it no more, but Init returned it).
	var secrets [][]byte
	for _, e := range append(first.Entries(), r.Entries()...) {
		if e.Secret == nil {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(e.Secret.PlaintextPASERK(), "k4.secret."))
		if err != nil || len(raw) != 64 {
			t.Fatal("cannot decode own secret key")
		}
		secrets = append(secrets, raw, raw[:32]) // full key and seed
	}
	locals, err := s.LoadLocal(ctx)
	if err != nil || len(locals) != 2 {
		t.Fatalf("LoadLocal: %d keys, %v", len(locals), err)
	}
	for _, l := range locals {
		secrets = append(secrets, l.Key.UnsafeBytes())
	}
	peppers, err := s.LoadPeppers(ctx)
	if err != nil || len(peppers) != 2 {
		t.Fatalf("LoadPeppers: %d, %v", len(peppers), err)
	}
	for _, p := range peppers {
		secrets = append(secrets, p.Pepper.UnsafeLocalKey().UnsafeBytes())
	}
	secrets = append(secrets, w.UnsafeBytes())
	for i, raw := range secrets {
		for _, f := range forms(raw) {
			if bytes.Contains(d, f) {
				t.Errorf("dump holds secret %d in some encoding", i)
			}
		}
	}
}

func TestWrongWrappingKey(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{})
	if _, err := s.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	wrong := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{})
	ops := map[string]func() error{
		"Load":       func() error { _, err := wrong.Load(ctx); return err },
		"LoadPublic": func() error { _, err := wrong.LoadPublic(ctx); return err },
		"LoadLocal":  func() error { _, err := wrong.LoadLocal(ctx); return err },
		"Update": func() error {
			_, err := wrong.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, t0) })
			return err
		},
		"RotateLocal": func() error { return wrong.RotateLocal(ctx, t0, 24*time.Hour) },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, keys.ErrUnwrap) {
			t.Errorf("%s with the wrong wrapping key: %v, want keys.ErrUnwrap", name, err)
		}
	}
	// Nothing was overwritten by the failed writers.
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadLocal(ctx); err != nil {
		t.Fatal(err)
	}
}

// A writer to Redis without the wrapping key cannot change a document:
// here it marks the next key revoked, as an attacker bringing back or
// withdrawing keys would.
func TestTamperedDocument(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{})
	if _, err := s.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv.Addr())
	tests := []struct {
		name string
		key  string
		edit func(string) string
	}{
		{"status", "hallpass:{keys}:ring", func(v string) string { return strings.Replace(v, `"status":"next"`, `"status":"retired"`, 1) }},
		{"local swapped into ring", "hallpass:{keys}:ring", func(string) string {
			return c.Get(ctx, "hallpass:{keys}:local").Val()
		}},
		{"local key", "hallpass:{keys}:local", func(v string) string { return strings.Replace(v, `"status":"current"`, `"status":"retired"`, 1) }},
	}
	for _, tt := range tests {
		orig := c.Get(ctx, tt.key).Val()
		if err := c.Set(ctx, tt.key, tt.edit(orig), 0).Err(); err != nil {
			t.Fatal(err)
		}
		_, errRing := s.Load(ctx)
		_, errLocal := s.LoadLocal(ctx)
		if !errors.Is(errRing, keys.ErrUnwrap) && !errors.Is(errLocal, keys.ErrUnwrap) &&
			!errors.Is(errRing, redisring.ErrCorrupt) {
			t.Errorf("%s: Load %v, LoadLocal %v; want a refusal", tt.name, errRing, errLocal)
		}
		if err := c.Set(ctx, tt.key, orig, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentRotate(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	a := newStore(t, srv.Addr(), w, redisring.Options{})
	b := newStore(t, srv.Addr(), w, redisring.Options{})
	if _, err := a.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	// Both first attempts wait until both have loaded the same version, so
	// one of them must lose the compare-and-set and retry.
	var loaded sync.WaitGroup
	loaded.Add(2)
	var calls atomic.Int32
	// Each call rotates keys.MinNextAge after the one before, so the retry
	// of the loser promotes a next key old enough to sign.
	rotate := func(first *sync.Once) func(*keys.Ring) error {
		return func(r *keys.Ring) error {
			n := calls.Add(1)
			first.Do(func() { loaded.Done(); loaded.Wait() })
			return r.Rotate(nil, t0.Add(time.Hour+time.Duration(n)*keys.MinNextAge))
		}
	}
	var onceA, onceB sync.Once
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, st := range []*redisring.Store{a, b} {
		once := &onceA
		if i == 1 {
			once = &onceB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = st.Update(ctx, rotate(once))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() < 3 {
		t.Errorf("fn ran %d times; the race did not happen", calls.Load())
	}
	r, v, err := b.LoadVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Entries()); n != 4 {
		t.Fatalf("ring has %d keys after two concurrent rotations from 2, want 4: %v", n, ids(r))
	}
	var retired int
	for _, e := range r.Entries() {
		if e.Status == keys.StatusRetired {
			retired++
		}
	}
	if retired != 2 || v != 3 {
		t.Errorf("retired %d (want 2), version %d (want 3)", retired, v)
	}
}

func TestManyWritersNoLostUpdate(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	if _, err := newStore(t, srv.Addr(), w, redisring.Options{}).Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	const nodes, each = 4, 3
	var wg sync.WaitGroup
	for i := 0; i < nodes; i++ {
		s := newStore(t, srv.Addr(), w, redisring.Options{MaxAttempts: 100})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				if _, err := s.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, t0) }); err != nil {
					t.Error(err)
				}
				if err := s.RotateLocal(ctx, t0, 24*time.Hour); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	s := newStore(t, srv.Addr(), w, redisring.Options{})
	r, v, err := s.LoadVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	locals, err := s.LoadLocal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries()) != 2+nodes*each || len(locals) != 1+nodes*each || v != 1+2*nodes*each {
		t.Fatalf("ring %d keys, local %d keys, version %d; want %d, %d, %d",
			len(r.Entries()), len(locals), v, 2+nodes*each, 1+nodes*each, 1+2*nodes*each)
	}
}

func TestConflictBounded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	a := newStore(t, srv.Addr(), w, redisring.Options{MaxAttempts: 3})
	b := newStore(t, srv.Addr(), w, redisring.Options{})
	if _, err := a.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	// Another node writes during each of a's attempts: a gives up.
	calls := 0
	_, err := a.Update(ctx, func(r *keys.Ring) error {
		calls++
		return b.RotateLocal(ctx, t0, 24*time.Hour)
	})
	if !errors.Is(err, redisring.ErrConflict) || calls != 3 {
		t.Fatalf("Update under constant contention: %v after %d calls, want ErrConflict after 3", err, calls)
	}
	// fn's error is returned and nothing is written.
	boom := errors.New("boom")
	v0, _ := a.Version(ctx)
	if _, err := a.Update(ctx, func(*keys.Ring) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update with failing fn: %v", err)
	}
	if v1, _ := a.Version(ctx); v1 != v0 {
		t.Errorf("failed Update changed the version %d -> %d", v0, v1)
	}
}

func TestRotateLocalKeep(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{})
	if _, err := s.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	first, _ := s.LoadLocal(ctx)
	if err := s.RotateLocal(ctx, t0.Add(time.Hour), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	got, _ := s.LoadLocal(ctx)
	if len(got) != 2 || !got[1].Key.Equal(first[0].Key) || !got[1].Retired.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after one rotation: %+v", got)
	}
	if err := s.RotateLocal(ctx, t0.Add(26*time.Hour), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LoadLocal(ctx)
	if len(got) != 2 || got[1].Key.Equal(first[0].Key) {
		t.Fatalf("key retired 25h ago with keep 24h was not dropped: %d keys", len(got))
	}
}

func TestOtherNodeSeesRotation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	a := newStore(t, srv.Addr(), w, redisring.Options{})
	// Polling far slower than the test: only the notification can be fast.
	b := newStore(t, srv.Addr(), w, redisring.Options{PollInterval: time.Hour})
	if _, err := a.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	ringB, vB, err := b.LoadVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if changed, _, err := b.Changed(ctx, vB); err != nil || changed {
		t.Fatalf("Changed before any write = %v, %v", changed, err)
	}

	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan uint64, 10)
	done := make(chan error, 1)
	go func() { done <- b.Watch(wctx, vB, func(v uint64) { seen <- v }) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	}()
	waitSubscribed(t, newClient(t, srv.Addr()))

	start := time.Now()
	ringA, err := a.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, t0.Add(time.Hour)) })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-seen:
		if v != vB+1 {
			t.Errorf("Watch saw version %d, want %d", v, vB+1)
		}
		t.Logf("rotation seen by the other node after %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not report the rotation")
	}
	changed, v, err := b.Changed(ctx, vB)
	if err != nil || !changed || v != vB+1 {
		t.Fatalf("Changed = %v, %d, %v", changed, v, err)
	}
	fresh, err := b.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Current().Equal(ringB.Current()) || !fresh.Current().Equal(ringA.Current()) {
		t.Fatal("node B does not sign with node A's new current key")
	}
}

// Without notifications (here: written behind the subscriber's back by a
// raw version bump), polling still finds the change.
func TestWatchPolls(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{PollInterval: 20 * time.Millisecond})
	seen := make(chan uint64, 10)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, 0, func(v uint64) { seen <- v }) }()
	if err := newClient(t, srv.Addr()).Set(ctx, "hallpass:{keys}:version", "7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-seen:
		if v != 7 {
			t.Errorf("saw %d, want 7", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("polling did not find the change")
	}
	cancel()
	<-done
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{OpTimeout: 500 * time.Millisecond})
	if _, err := s.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	ops := map[string]func() error{
		"Load":        func() error { _, err := s.Load(ctx); return err },
		"LoadPublic":  func() error { _, err := s.LoadPublic(ctx); return err },
		"LoadLocal":   func() error { _, err := s.LoadLocal(ctx); return err },
		"Init":        func() error { _, err := s.Init(ctx, t0); return err },
		"Update":      func() error { _, err := s.Update(ctx, func(*keys.Ring) error { return nil }); return err },
		"RotateLocal": func() error { return s.RotateLocal(ctx, t0, 24*time.Hour) },
		"Version":     func() error { _, err := s.Version(ctx); return err },
		"Changed":     func() error { _, _, err := s.Changed(ctx, 0); return err },
		"Exists":      func() error { _, err := s.Exists(ctx); return err },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if !errors.Is(err, redisring.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond { // OpTimeout + slack
			t.Errorf("%s took %v with Redis down", name, d)
		}
	}
	// A cancelled context is refused at once, also as unavailable.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(cctx); !errors.Is(err, redisring.ErrUnavailable) {
		t.Errorf("Load with a cancelled context: %v", err)
	}
	// Back (empty, no persistence): the store answers again without a new
	// client. This node has seen a ring that is gone: a rollback to
	// nothing, refused; a node that never saw it finds no ring.
	srv.Restart(t)
	if _, err := s.Load(ctx); !errors.Is(err, redisring.ErrRollback) {
		t.Errorf("Load after restart: %v, want ErrRollback", err)
	}
	if _, err := s.Init(ctx, t0); !errors.Is(err, redisring.ErrRollback) {
		t.Errorf("Init after restart: %v, want ErrRollback (a vanished ring is not silently replaced)", err)
	}
	fresh := newStore(t, srv.Addr(), wrapKey(t), redisring.Options{OpTimeout: 500 * time.Millisecond})
	if _, err := fresh.Load(ctx); !errors.Is(err, redisring.ErrNotFound) {
		t.Errorf("Load by a new node after restart: %v, want ErrNotFound", err)
	}
}

func TestPrefixesAreSeparate(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	a := newStore(t, srv.Addr(), w, redisring.Options{Prefix: "a"})
	b := newStore(t, srv.Addr(), w, redisring.Options{Prefix: "b"})
	if _, err := a.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(ctx); !errors.Is(err, redisring.ErrNotFound) {
		t.Fatalf("prefix b sees prefix a's ring: %v", err)
	}
	names, _ := newClient(t, srv.Addr()).Keys(ctx, "*").Result()
	for _, k := range names {
		if !strings.HasPrefix(k, "a:{keys}:") {
			t.Errorf("key %q outside the prefix and hash tag", k)
		}
	}
}

// waitSubscribed waits until a watcher listens on the events channel, so a
// test that expects a notification does not race the SUBSCRIBE.
func waitSubscribed(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.PubSubNumSub(context.Background(), "hallpass:{keys}:events").Result()
		if err == nil && n["hallpass:{keys}:events"] > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no subscriber on the events channel: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
