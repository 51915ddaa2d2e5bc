package revocation_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

const (
	testIss = "https://issuer.example"
	testAud = "api.example"
	testJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

func testKey(t testing.TB, seed byte) *keys.SecretKey {
	t.Helper()
	sk, err := keys.SecretKeyFromEd25519(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

func mint(t testing.TB, sk *keys.SecretKey, account, device string, now time.Time) (string, *token.Claims) {
	t.Helper()
	m, err := token.NewMinter(token.Config{Issuer: testIss, Audience: testAud, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, c, err := m.Mint(sk, token.Subject{Account: account, Device: device, JKT: testJKT})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

func newVerifier(t testing.TB, now func() time.Time, rc verifier.RevocationChecker, pks ...keys.PublicKey) *verifier.Verifier {
	t.Helper()
	ks, err := verifier.NewStaticKeySet(pks...)
	if err != nil {
		t.Fatal(err)
	}
	opts := []verifier.Option{verifier.WithClock(now)}
	if rc != nil {
		opts = append(opts, verifier.WithRevocation(rc))
	}
	v, err := verifier.New(ks, testIss, testAud, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerifierWithMirror: a verifier wired to a mirror refuses the tokens
// each kind of entry denies, at once, and accepts the others.
func TestVerifierWithMirror(t *testing.T) {
	ctx := t.Context()
	k1, k2 := testKey(t, 1), testKey(t, 2)
	issued := time.Now().Add(-2 * time.Second)

	type tok struct {
		s string
		c *token.Claims
	}
	toks := map[string]tok{}
	for _, x := range []struct {
		name, account, device string
		key                   *keys.SecretKey
	}{
		{"a1d1", "acct-1", "dev-1", k1},
		{"a1d2", "acct-1", "dev-2", k1},
		{"a2d3", "acct-2", "dev-3", k1},
		{"a3d4", "acct-3", "dev-4", k1},
		{"a3d5", "acct-3", "dev-5", k1},
		{"k2", "acct-4", "dev-6", k2},
	} {
		s, c := mint(t, x.key, x.account, x.device, issued)
		toks[x.name] = tok{s, c}
	}

	s := newBolt(t, nil, 0)
	m := startMirror(t, s, revocation.MirrorOptions{})
	v := newVerifier(t, time.Now, m, k1.PublicKey(), k2.PublicKey())

	for _, tc := range []struct {
		name    string
		kind    revocation.Kind
		id      string
		refused []string // cumulative with the earlier rows
	}{
		{name: "device", kind: revocation.KindDevice, id: "dev-1", refused: []string{"a1d1"}},
		{name: "token", kind: revocation.KindToken, id: toks["a3d4"].c.ID, refused: []string{"a3d4"}},
		{name: "account", kind: revocation.KindAccount, id: "acct-2", refused: []string{"a2d3"}},
		{name: "key", kind: revocation.KindKey, id: string(k2.ID()), refused: []string{"k2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			add(t, s, tc.kind, tc.id, time.Now())
			for _, name := range tc.refused {
				eventually(t, time.Second, tc.name+" revocation", func() bool {
					_, err := v.Verify(ctx, toks[name].s)
					return errors.Is(err, verifier.ErrRevoked)
				})
				_, err := v.Verify(ctx, toks[name].s)
				if !errors.Is(err, revocation.ErrRevoked) || verifier.Code(err) != verifier.CodeTokenRevoked {
					t.Fatalf("%s: %v (code %s)", name, err, verifier.Code(err))
				}
			}
		})
	}
	for _, name := range []string{"a1d2", "a3d5"} {
		if _, err := v.Verify(ctx, toks[name].s); err != nil {
			t.Fatalf("%s must still pass: %v", name, err)
		}
	}

	t.Run("all", func(t *testing.T) {
		add(t, s, revocation.KindAll, "", time.Now())
		eventually(t, time.Second, "global epoch", func() bool {
			_, err := v.Verify(ctx, toks["a1d2"].s)
			return errors.Is(err, verifier.ErrRevoked)
		})
		if _, err := v.Verify(ctx, toks["a3d5"].s); !errors.Is(err, verifier.ErrRevoked) {
			t.Fatalf("a token issued before the epoch: %v", err)
		}
		fresh, _ := mint(t, k1, "acct-1", "dev-2", time.Now().Add(time.Second))
		if _, err := v.Verify(ctx, fresh); err != nil {
			t.Fatalf("a token issued after the epoch: %v", err)
		}
	})
}

// TestVerifierWithStaleMirrorFailsClosed: an unreachable store makes the
// verifier refuse tokens once the bound passes.
func TestVerifierWithStaleMirrorFailsClosed(t *testing.T) {
	f := &flaky{Store: newBolt(t, nil, 0)}
	m := startMirror(t, f, revocation.MirrorOptions{MaxStaleness: 300 * time.Millisecond, Block: 50 * time.Millisecond})
	k := testKey(t, 1)
	tok, _ := mint(t, k, "a", "d", time.Now().Add(-time.Second))
	v := newVerifier(t, time.Now, m, k.PublicKey())
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	eventually(t, 2*time.Second, "stale", func() bool {
		_, err := v.Verify(t.Context(), tok)
		return errors.Is(err, revocation.ErrStale) && errors.Is(err, verifier.ErrRevoked)
	})
}

// staticStore serves a generated snapshot and no events.
type staticStore struct {
	gen func() []revocation.Entry
}

func (s staticStore) Add(context.Context, revocation.Entry) (revocation.Entry, error) {
	return revocation.Entry{}, errors.ErrUnsupported
}
func (s staticStore) Snapshot(context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	return s.gen(), "0", nil
}
func (s staticStore) Follow(ctx context.Context, c revocation.Cursor, _ int, block time.Duration) ([]revocation.Entry, revocation.Cursor, error) {
	t := time.NewTimer(block)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, c, ctx.Err()
	case <-t.C:
		return nil, c, nil
	}
}
func (s staticStore) Ping(context.Context) error { return nil }

// genEntries makes n live entries, a third each tokens, devices and
// accounts, with ids shaped like the real ones (22-character jti, ids of
// about 26 characters).
func genEntries(n int) []revocation.Entry {
	now := time.Now()
	out := make([]revocation.Entry, n)
	kinds := []revocation.Kind{revocation.KindToken, revocation.KindDevice, revocation.KindAccount}
	for i := range out {
		out[i] = revocation.Entry{
			Kind: kinds[i%3], ID: fmt.Sprintf("id_%022d", i),
			Before: now, Created: now, Expires: now.Add(time.Hour),
		}
	}
	return out
}

type loadedMirror struct {
	m             *revocation.Mirror
	bytesPerEntry float64
}

// mirrorCache builds each mirror once per top-level benchmark (sub-benchmark
// functions run several times) and closes them when it ends.
type mirrorCache struct {
	mu sync.Mutex
	m  map[int]*loadedMirror
}

func newMirrorCache(b *testing.B) *mirrorCache {
	c := &mirrorCache{m: map[int]*loadedMirror{}}
	b.Cleanup(func() {
		for _, lm := range c.m {
			lm.m.Close()
		}
	})
	return c
}

// loaded returns a running mirror holding n entries and the heap it costs
// per entry.
func (c *mirrorCache) loaded(b *testing.B, n int) *loadedMirror {
	b.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if lm := c.m[n]; lm != nil {
		return lm
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := revocation.NewMirror(staticStore{gen: func() []revocation.Entry { return genEntries(n) }}, revocation.MirrorOptions{MaxStaleness: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	m.Start()
	<-m.Synced()
	runtime.GC()
	runtime.ReadMemStats(&after)
	lm := &loadedMirror{m: m}
	if n > 0 {
		lm.bytesPerEntry = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	}
	c.m[n] = lm
	return lm
}

// BenchmarkCheckRevoked: the per-request check with no entries and with
// 1,000,000, in the same run. Goal: no measurable difference.
func BenchmarkCheckRevoked(b *testing.B) {
	iat := time.Now().Add(-time.Second).Truncate(time.Second)
	cache := newMirrorCache(b)
	c := &token.Claims{Subject: "acct_not_revoked", Device: "dev_not_revoked", ID: "jti_not_revoked_000000", IssuedAt: iat}
	for _, n := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			lm := cache.loaded(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := lm.m.CheckRevoked(ctx, kid, c); err != nil {
					b.Fatal(err)
				}
			}
			if n > 0 {
				b.ReportMetric(lm.bytesPerEntry, "B/entry")
			}
		})
	}
	b.Run("entries=1000000/hit", func(b *testing.B) {
		lm := cache.loaded(b, 1_000_000)
		hit := *c
		hit.Device = fmt.Sprintf("id_%022d", 1)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := lm.m.CheckRevoked(ctx, kid, &hit); err == nil {
				b.Fatal("not revoked")
			}
		}
	})
}

// BenchmarkVerifyWithMirror: a full Verify with a mirror of 0 and 1,000,000
// entries, beside plain Verify (the baseline) in the same run.
func BenchmarkVerifyWithMirror(b *testing.B) {
	cache := newMirrorCache(b)
	k := testKey(b, 1)
	now := time.Now()
	tok, _ := mint(b, k, "acct_bench", "dev_bench", now.Add(-time.Second))
	clock := func() time.Time { return now }
	run := func(b *testing.B, v *verifier.Verifier) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("plain", func(b *testing.B) { run(b, newVerifier(b, clock, nil, k.PublicKey())) })
	for _, n := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("mirror/entries=%d", n), func(b *testing.B) {
			run(b, newVerifier(b, clock, cache.loaded(b, n).m, k.PublicKey()))
		})
	}
}
