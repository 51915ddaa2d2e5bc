package verifier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// cachedVerifier trusts key 7 through a recordingKeys, reads *now, and
// caches up to n tokens.
func cachedVerifier(t *testing.T, now *time.Time, n int, opts ...Option) (*Verifier, *recordingKeys) {
	t.Helper()
	ks, err := NewStaticKeySet(testKey(t, 7).PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	rk := &recordingKeys{KeySource: ks}
	opts = append([]Option{WithClock(func() time.Time { return *now }), WithTokenCache(n)}, opts...)
	v, err := New(rk, testIss, testAud, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v, rk
}

func TestTokenCache(t *testing.T) {
	tok, want := mint(t, testKey(t, 7), testNow)
	ctx := context.Background()

	t.Run("hit returns equal claims, a copy", func(t *testing.T) {
		now := testNow
		v, rk := cachedVerifier(t, &now, 100)
		c1, err := v.Verify(ctx, tok)
		if err != nil || *c1 != *want || v.cache.len() != 1 {
			t.Fatalf("miss: %v %+v len %d", err, c1, v.cache.len())
		}
		c1.Subject = "mutated"
		c2, err := v.Verify(ctx, tok)
		if err != nil || *c2 != *want {
			t.Fatalf("hit: %v %+v", err, c2)
		}
		c2.Expiry = c2.Expiry.Add(time.Hour)
		if c3, err := v.Verify(ctx, tok); err != nil || *c3 != *want || c3 == c2 {
			t.Fatalf("hit after mutation: %v %+v", err, c3)
		}
		if rk.calls != 3 {
			t.Fatalf("key looked up %d times, want once per call", rk.calls)
		}
	})

	t.Run("expiry is checked against the clock of each call", func(t *testing.T) {
		now := testNow
		v, _ := cachedVerifier(t, &now, 100)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		now = want.Expiry.Add(DefaultLeeway - time.Nanosecond)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("within leeway: %v", err)
		}
		now = want.Expiry.Add(DefaultLeeway)
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
			t.Fatalf("got %v, want ErrExpired", err)
		}
		if v.cache.len() != 0 {
			t.Fatal("expired entry kept")
		}
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
			t.Fatalf("after eviction: %v, want ErrExpired", err)
		}
	})

	t.Run("not yet valid on a hit", func(t *testing.T) {
		now := testNow
		v, _ := cachedVerifier(t, &now, 100)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		now = testNow.Add(-DefaultLeeway - time.Second) // the clock stepped back
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrNotYetValid) {
			t.Fatalf("got %v, want ErrNotYetValid", err)
		}
	})

	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"key revoked after caching", ErrKeyRevoked, ErrKeyRevoked},
		{"key dropped after caching", ErrUnknownKey, ErrUnknownKey},
		{"key source failing", errors.New("fetch failed"), ErrKeySource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := testNow
			v, rk := cachedVerifier(t, &now, 100)
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			rk.err = tc.err
			if c, err := v.Verify(ctx, tok); c != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if v.cache.len() != 0 {
				t.Fatal("entry kept")
			}
		})
	}

	t.Run("key source returns another key under the kid", func(t *testing.T) {
		now := testNow
		v, rk := cachedVerifier(t, &now, 100)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		other := testKey(t, 8).PublicKey()
		rk.key = &other // its ID differs: refused as a key-source fault
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrKeySource) {
			t.Fatalf("got %v, want ErrKeySource", err)
		}
	})

	t.Run("revocation after caching", func(t *testing.T) {
		now := testNow
		revoked := false
		rc := checkerFunc(func(ctx context.Context, kid keys.KeyID, c *token.Claims) error {
			if revoked {
				return errors.New("jti denylisted")
			}
			return nil
		})
		v, _ := cachedVerifier(t, &now, 100, WithRevocation(rc))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		revoked = true
		if c, err := v.Verify(ctx, tok); c != nil || !errors.Is(err, ErrRevoked) {
			t.Fatalf("got %v, want ErrRevoked", err)
		}
	})

	t.Run("binding checked on every call", func(t *testing.T) {
		now := testNow
		v, _ := cachedVerifier(t, &now, 100)
		calls := 0
		ok := bindingFunc(func(ctx context.Context, c *token.Claims) error {
			calls++
			if *c != *want {
				return errors.New("claims differ")
			}
			return nil
		})
		bad := bindingFunc(func(ctx context.Context, c *token.Claims) error { return errors.New("wrong key") })
		for range 3 {
			if _, err := v.VerifyBound(ctx, tok, ok); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.VerifyBound(ctx, tok, bad); !errors.Is(err, ErrBinding) {
			t.Fatalf("got %v, want ErrBinding", err)
		}
		if calls != 3 {
			t.Fatalf("binding ran %d times, want 3", calls)
		}
		if _, err := v.VerifyBound(ctx, tok, nil); !errors.Is(err, ErrBinding) {
			t.Fatalf("nil checker on a hit: %v", err)
		}
	})

	t.Run("one flipped character misses and fails the signature", func(t *testing.T) {
		now := testNow
		v, _ := cachedVerifier(t, &now, 100)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		// A character of the signed payload.
		i := len(token.HeaderV4Public) + 40
		bad := flipBit(t, tok, i)
		if c, err := v.Verify(ctx, bad); c != nil || !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("got %v, want ErrInvalidSignature", err)
		}
		if v.cache.len() != 1 {
			t.Fatalf("cache has %d entries, want 1", v.cache.len())
		}
	})

	t.Run("refused tokens are not cached", func(t *testing.T) {
		now := want.Expiry.Add(time.Hour)
		v, _ := cachedVerifier(t, &now, 100)
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
			t.Fatal(err)
		}
		if v.cache.len() != 0 {
			t.Fatal("expired token cached")
		}
	})
}

func TestTokenCacheBounded(t *testing.T) {
	for _, size := range []int{1, 5, 16, 32, 37} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testTokenCacheBounded(t, size) })
	}
}

// testTokenCacheBounded fills a cache of size entries: it never holds
// more, and it fills up to size (no shard is left without room).
func testTokenCacheBounded(t *testing.T, size int) {
	now := testNow
	v, _ := cachedVerifier(t, &now, size)
	ctx := context.Background()
	full := false
	for i := range 500 {
		tok, _ := mint(t, testKey(t, 7), testNow.Add(-time.Duration(i)*time.Second))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		n := v.cache.len()
		if n > size {
			t.Fatalf("after %d tokens: %d entries, more than %d", i+1, n, size)
		}
		full = full || n == size
	}
	if !full {
		t.Errorf("500 tokens never filled a cache of %d", size)
	}
	// Expired entries go first when a shard is full.
	now = testNow.Add(token.MaxTTL + DefaultLeeway + 501*time.Second)
	tok, _ := mint(t, testKey(t, 7), now)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := v.cache.len(); n > size {
		t.Fatalf("%d entries", n)
	}
}

func TestTokenCacheConcurrent(t *testing.T) {
	now := testNow
	v, _ := cachedVerifier(t, &now, 16)
	v.keys = v.keys.(*recordingKeys).KeySource // recordingKeys is not safe for concurrent use
	toks := make([]string, 40)
	wants := make([]*token.Claims, len(toks))
	for i := range toks {
		toks[i], wants[i] = mint(t, testKey(t, 7), testNow.Add(-time.Duration(i)*time.Second))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				j := (g*7 + i) % len(toks)
				c, err := v.Verify(ctx, toks[j])
				if err == nil && *c != *wants[j] {
					err = fmt.Errorf("token %d: wrong claims", j)
				}
				if err != nil {
					errs <- err
					return
				}
				c.Subject = "mutated"
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := v.cache.len(); n > 16 {
		t.Fatalf("%d entries", n)
	}
}

func TestWithTokenCacheConfig(t *testing.T) {
	for _, n := range []int{-1, 0, MaxTokenCacheEntries + 1} {
		if _, err := New(&StaticKeySet{}, testIss, testAud, WithTokenCache(n)); !errors.Is(err, ErrConfig) {
			t.Errorf("WithTokenCache(%d): %v, want ErrConfig", n, err)
		}
	}
}
