package remotekeys_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/depcheck"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testAud = "api.example.com"

// issuer is an issuer-like HTTPS server publishing a real keys.Ring.
type issuer struct {
	t       *testing.T
	srv     *httptest.Server
	ring    *keys.Ring
	clock   *clock
	cache   string // Cache-Control
	down    atomic.Bool
	body    atomic.Pointer[[]byte] // replaces the document when set
	hits    atomic.Int64
	delay   time.Duration
	jkt     string
	docIssu string // issuer named in the document; default the URL
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newIssuer(t *testing.T, tls bool) *issuer {
	t.Helper()
	is := &issuer{t: t, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, cache: "public, max-age=60"}
	ring, err := keys.NewRing(nil, is.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	is.ring = ring
	_, dk, _ := ed25519.GenerateKey(nil)
	is.jkt, _ = dpop.Thumbprint(dk.Public())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		if is.delay > 0 {
			time.Sleep(is.delay)
		}
		if is.down.Load() || r.URL.Path != remotekeys.WellKnownPath {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", is.cache)
		w.Header().Set("Content-Type", "application/json")
		if b := is.body.Load(); b != nil {
			_, _ = w.Write(*b)
			return
		}
		iss := is.docIssu
		if iss == "" {
			iss = is.srv.URL
		}
		_ = json.NewEncoder(w).Encode(is.ring.KeySet(iss))
	})
	if tls {
		is.srv = httptest.NewTLSServer(h)
	} else {
		is.srv = httptest.NewServer(h)
	}
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) config() remotekeys.Config {
	return remotekeys.Config{
		Issuer: is.srv.URL,
		Client: is.srv.Client(),
		Now:    is.clock.Now,
	}
}

func (is *issuer) keySet(cfg remotekeys.Config) *remotekeys.KeySet {
	is.t.Helper()
	ks, err := remotekeys.New(context.Background(), cfg)
	if err != nil {
		is.t.Fatal(err)
	}
	is.t.Cleanup(func() { ks.Close() })
	return ks
}

// mint signs a token with the ring's current key, now.
func (is *issuer) mint() string {
	is.t.Helper()
	m, err := token.NewMinter(token.Config{Issuer: is.srv.URL, Audience: testAud, Now: is.clock.Now})
	if err != nil {
		is.t.Fatal(err)
	}
	tok, _, err := m.Mint(is.ring.Current(), token.Subject{Account: "acc_1", Device: "dev_1", JKT: is.jkt})
	if err != nil {
		is.t.Fatal(err)
	}
	return tok
}

func (is *issuer) verifier(ks verifier.KeySource) *verifier.Verifier {
	is.t.Helper()
	v, err := verifier.New(ks, is.srv.URL, testAud, verifier.WithClock(is.clock.Now))
	if err != nil {
		is.t.Fatal(err)
	}
	return v
}

func verify(v *verifier.Verifier, tok string) error {
	_, err := v.Verify(context.Background(), tok)
	return err
}

func TestRotation(t *testing.T) {
	is := newIssuer(t, true)
	ks := is.keySet(is.config())
	v := is.verifier(ks)
	old := is.mint()
	if err := verify(v, old); err != nil {
		t.Fatal(err)
	}

	// One rotation: the new current key was published as next, so its
	// tokens work without a fetch.
	if err := is.ring.Rotate(nil, is.clock.Now()); err != nil {
		t.Fatal(err)
	}
	fetches := ks.Fetches()
	if err := verify(v, is.mint()); err != nil {
		t.Fatalf("token of the former next key: %v", err)
	}
	if ks.Fetches() != fetches {
		t.Fatal("fetched for a known key")
	}

	// Two more rotations: the current key is new to the verifier; the
	// unknown kid makes it refetch once.
	for range 2 {
		if err := is.ring.Rotate(nil, is.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	fresh := is.mint()
	if err := verify(v, fresh); err != nil {
		t.Fatalf("token of a key unknown until the refetch: %v", err)
	}
	if ks.Fetches() != fetches+1 {
		t.Fatalf("fetches %d, want %d", ks.Fetches(), fetches+1)
	}
	// The retired key's tokens keep working until they expire.
	if err := verify(v, old); err != nil {
		t.Fatalf("retired key's token: %v", err)
	}
	is.clock.Add(token.DefaultTTL + verifier.DefaultLeeway)
	if err := verify(v, old); !errors.Is(err, verifier.ErrExpired) {
		t.Fatalf("expired token of the retired key: %v", err)
	}
	// Once the issuer prunes the retired key, a refresh forgets it.
	is.ring.Prune(is.clock.Now(), token.DefaultTTL)
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.LookupKey(context.Background(), kidOf(t, old)); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Fatalf("pruned key: %v", err)
	}
}

func TestRevocation(t *testing.T) {
	t.Run("next fetch", func(t *testing.T) {
		is := newIssuer(t, true)
		ks := is.keySet(is.config())
		v := is.verifier(ks)
		tok := is.mint()
		if err := verify(v, tok); err != nil {
			t.Fatal(err)
		}
		doc := is.ring.KeySet(is.srv.URL)
		oldDoc, _ := json.Marshal(doc)
		if err := is.ring.Revoke(is.ring.Current().ID(), nil, is.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := ks.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := verify(v, tok); !errors.Is(err, verifier.ErrKeyRevoked) {
			t.Fatalf("revoked key's token: %v", err)
		}
		// An older document (a stale cache in front of the issuer) does not
		// bring the key back.
		is.body.Store(&oldDoc)
		if err := ks.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := verify(v, tok); !errors.Is(err, verifier.ErrKeyRevoked) {
			t.Fatalf("revoked key's token after an old document: %v", err)
		}
	})
	t.Run("unknown-kid refetch", func(t *testing.T) {
		is := newIssuer(t, true)
		ks := is.keySet(is.config())
		v := is.verifier(ks)
		tok := is.mint()
		// Revoke the current key (the next one takes over), then rotate:
		// the new current key is unknown to the verifier.
		if err := is.ring.Revoke(is.ring.Current().ID(), nil, is.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := is.ring.Rotate(nil, is.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := verify(v, tok); err != nil {
			t.Fatalf("before any fetch the key is still trusted: %v", err)
		}
		if err := verify(v, is.mint()); err != nil {
			t.Fatal(err)
		}
		if err := verify(v, tok); !errors.Is(err, verifier.ErrKeyRevoked) {
			t.Fatalf("after the refetch: %v", err)
		}
	})
}

func TestUnknownKidCooldown(t *testing.T) {
	is := newIssuer(t, true)
	is.delay = 20 * time.Millisecond
	cfg := is.config()
	ks := is.keySet(cfg)
	start := ks.Fetches()

	// A burst of lookups of unknown kids: one fetch.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			sk, _ := keys.GenerateSecretKey(nil)
			if _, err := ks.LookupKey(context.Background(), sk.ID()); !errors.Is(err, verifier.ErrUnknownKey) {
				t.Errorf("unknown kid: %v", err)
			}
		})
	}
	wg.Wait()
	if n := ks.Fetches() - start; n != 1 {
		t.Fatalf("%d fetches for a burst of unknown kids, want 1", n)
	}
	// Within the cooldown: none.
	sk, _ := keys.GenerateSecretKey(nil)
	is.clock.Add(remotekeys.DefaultCooldown - time.Second)
	_, _ = ks.LookupKey(context.Background(), sk.ID())
	if n := ks.Fetches() - start; n != 1 {
		t.Fatalf("fetched within the cooldown (%d)", n)
	}
	// After it: one more.
	is.clock.Add(2 * time.Second)
	_, _ = ks.LookupKey(context.Background(), sk.ID())
	if n := ks.Fetches() - start; n != 2 {
		t.Fatalf("fetches after the cooldown: %d, want 2", n)
	}
}

func TestIssuerDownAtStart(t *testing.T) {
	is := newIssuer(t, true)
	cacheFile := filepath.Join(t.TempDir(), "keys.json")
	cfg := is.config()
	cfg.CacheFile = cacheFile
	first, err := remotekeys.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	fi, err := os.Stat(cacheFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode %v", fi.Mode())
	}
	tok := is.mint()

	is.down.Store(true)
	t.Run("from the cache file", func(t *testing.T) {
		ks := is.keySet(cfg)
		if err := verify(is.verifier(ks), tok); err != nil {
			t.Fatal(err)
		}
		if !ks.FetchedAt().Equal(fi.ModTime()) {
			t.Fatalf("FetchedAt %v, want the file's mtime %v", ks.FetchedAt(), fi.ModTime())
		}
		// The issuer comes back: the next fetch succeeds.
		is.down.Store(false)
		defer is.down.Store(true)
		if err := ks.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MaxStale", func(t *testing.T) {
		c := cfg
		c.MaxStale = time.Hour
		ks := is.keySet(c)
		is.clock.Add(2 * time.Hour)
		defer is.clock.Add(-2 * time.Hour)
		if _, err := ks.LookupKey(context.Background(), kidOf(t, tok)); !errors.Is(err, remotekeys.ErrStale) {
			t.Fatalf("stale set: %v", err)
		}
		if err := verify(is.verifier(ks), tok); verifier.Code(err) != verifier.CodeServerError {
			t.Fatalf("stale set through the verifier: %v", err)
		}
	})
	t.Run("no cache file", func(t *testing.T) {
		c := cfg
		c.CacheFile = ""
		if _, err := remotekeys.New(context.Background(), c); !errors.Is(err, remotekeys.ErrFetch) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("group-writable cache file", func(t *testing.T) {
		if err := os.Chmod(cacheFile, 0o620); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(cacheFile, 0o600)
		if _, err := remotekeys.New(context.Background(), cfg); !errors.Is(err, remotekeys.ErrCacheFile) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("cache file of another issuer", func(t *testing.T) {
		c := cfg
		c.Issuer = "https://other.example"
		c.URL = is.srv.URL + remotekeys.WellKnownPath
		if _, err := remotekeys.New(context.Background(), c); !errors.Is(err, verifier.ErrKeySet) {
			t.Fatalf("New: %v", err)
		}
	})
}

// TestMaxStaleDefault is the regression test of issue 11, finding 9:
// MaxStale defaulted to unbounded, so a verifier cut off from its issuer
// trusted a since-revoked key for as long as the cut lasted. Reproduction:
// start a KeySet, take the issuer down, let 30 days pass: LookupKey still
// answered with the key. Now the zero Config fails closed after
// DefaultMaxStale (24 h), and a successful fetch ends it.
func TestMaxStaleDefault(t *testing.T) {
	is := newIssuer(t, true)
	ks := is.keySet(is.config()) // MaxStale left zero
	tok := is.mint()
	kid := kidOf(t, tok)
	is.down.Store(true)
	is.clock.Add(remotekeys.DefaultMaxStale - time.Minute)
	if _, err := ks.LookupKey(context.Background(), kid); err != nil {
		t.Fatalf("within DefaultMaxStale: %v", err)
	}
	is.clock.Add(2 * time.Minute)
	if _, err := ks.LookupKey(context.Background(), kid); !errors.Is(err, remotekeys.ErrStale) {
		t.Fatalf("past DefaultMaxStale: %v, want ErrStale", err)
	}
	// Through a verifier it is a server error (503 at the HTTP edge), not
	// a verdict on the token.
	tok2 := is.mint()
	if err := verify(is.verifier(ks), tok2); verifier.Code(err) != verifier.CodeServerError || !errors.Is(err, remotekeys.ErrStale) {
		t.Fatalf("stale set through the verifier: %v", err)
	}
	is.down.Store(false)
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.LookupKey(context.Background(), kid); err != nil {
		t.Fatalf("after a good fetch: %v", err)
	}
}

func TestMaxStaleConfig(t *testing.T) {
	is := newIssuer(t, true)
	tests := []struct {
		name     string
		maxStale time.Duration
		ok       bool
	}{
		{"zero: the default", 0, true},
		{"negative", -time.Second, false},
		{"below twice MinRefresh", 2*remotekeys.DefaultMinRefresh - time.Second, false},
		{"twice MinRefresh", 2 * remotekeys.DefaultMinRefresh, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := is.config()
			c.MaxStale = tt.maxStale
			ks, err := remotekeys.New(context.Background(), c)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errors.Is(err, remotekeys.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if ks != nil {
				ks.Close()
			}
		})
	}
}

func TestRefused(t *testing.T) {
	t.Run("size limit", func(t *testing.T) {
		for _, chunked := range []bool{false, true} {
			is := newIssuer(t, true)
			doc, _ := json.Marshal(is.ring.KeySet(is.srv.URL))
			big := append(doc[:len(doc)-1:len(doc)-1], []byte(`,"pad":"`+strings.Repeat("x", verifier.MaxKeySetSize)+`"}`)...)
			is.body.Store(&big)
			if chunked {
				is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Write(big[:100])
					w.(http.Flusher).Flush()
					w.Write(big[100:])
				})
			}
			_, err := remotekeys.New(context.Background(), is.config())
			if !errors.Is(err, remotekeys.ErrFetch) || !strings.Contains(err.Error(), "larger") {
				t.Fatalf("chunked=%v: %v", chunked, err)
			}
		}
	})
	t.Run("wrong issuer in the document", func(t *testing.T) {
		is := newIssuer(t, true)
		is.docIssu = "https://evil.example"
		if _, err := remotekeys.New(context.Background(), is.config()); !errors.Is(err, verifier.ErrKeySet) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("kid not matching its key", func(t *testing.T) {
		is := newIssuer(t, true)
		doc := is.ring.KeySet(is.srv.URL)
		doc.Keys[0].Kid, doc.Keys[1].Kid = doc.Keys[1].Kid, doc.Keys[0].Kid
		b, _ := json.Marshal(doc)
		is.body.Store(&b)
		if _, err := remotekeys.New(context.Background(), is.config()); !errors.Is(err, verifier.ErrKeySet) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("refused document keeps the last good set", func(t *testing.T) {
		is := newIssuer(t, true)
		ks := is.keySet(is.config())
		tok := is.mint()
		bad := []byte(`{"issuer":"https://evil.example","keys":[]}`)
		is.body.Store(&bad)
		if err := ks.Refresh(context.Background()); !errors.Is(err, verifier.ErrKeySet) {
			t.Fatalf("Refresh: %v", err)
		}
		if err := verify(is.verifier(ks), tok); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("http", func(t *testing.T) {
		is := newIssuer(t, false)
		if _, err := remotekeys.New(context.Background(), is.config()); !errors.Is(err, remotekeys.ErrConfig) {
			t.Fatalf("http without AllowHTTP: %v", err)
		}
		cfg := is.config()
		cfg.AllowHTTP = true
		is.keySet(cfg)
		cfg.URL = "http://issuer.example" + remotekeys.WellKnownPath
		if _, err := remotekeys.New(context.Background(), cfg); !errors.Is(err, remotekeys.ErrConfig) {
			t.Fatalf("http on a non-loopback host: %v", err)
		}
	})
	t.Run("redirect to http", func(t *testing.T) {
		plain := newIssuer(t, false)
		is := newIssuer(t, true)
		is.srv.Config.Handler = http.RedirectHandler(plain.srv.URL+remotekeys.WellKnownPath, http.StatusFound)
		if _, err := remotekeys.New(context.Background(), is.config()); !errors.Is(err, remotekeys.ErrFetch) {
			t.Fatalf("New: %v", err)
		}
	})
}

// TestBackgroundRefresh: the refresh goroutine follows max-age within its
// bounds, and Close stops it (goleak in TestMain).
func TestBackgroundRefresh(t *testing.T) {
	is := newIssuer(t, true)
	is.cache = "max-age=0"
	cfg := is.config()
	cfg.MinRefresh, cfg.MaxRefresh = 20*time.Millisecond, 50*time.Millisecond
	ks, err := remotekeys.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ks.Fetches() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d fetches", ks.Fetches())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A revocation reaches the verifier with the next background fetch.
	tok := is.mint()
	if err := is.ring.Revoke(is.ring.Current().ID(), nil, is.clock.Now()); err != nil {
		t.Fatal(err)
	}
	v := is.verifier(ks)
	for verify(v, tok) == nil {
		if time.Now().After(deadline) {
			t.Fatal("revocation never seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	n := ks.Fetches()
	time.Sleep(100 * time.Millisecond)
	if ks.Fetches() != n {
		t.Fatal("fetching after Close")
	}
	if err := ks.Refresh(context.Background()); !errors.Is(err, remotekeys.ErrClosed) {
		t.Fatalf("Refresh after Close: %v", err)
	}
	if _, err := ks.LookupKey(context.Background(), is.ring.Current().ID()); err != nil {
		t.Fatalf("LookupKey after Close: %v", err)
	}
}

func kidOf(t *testing.T, tok string) keys.KeyID {
	t.Helper()
	f, err := token.UnsafeParseFooterKid(tok)
	if err != nil {
		t.Fatal(err)
	}
	return f.Kid
}

// TestDependencies: a verifier following a remote key set pulls in no
// HTTP framework and no database client.
func TestDependencies(t *testing.T) {
	depcheck.Allowed(t, "github.com/hallpass/hallpass/verifier/remotekeys", func(dep string) bool {
		if strings.Contains(dep, "labstack/echo") || strings.Contains(dep, "redis") || strings.Contains(dep, "go-jose") {
			return false
		}
		return strings.HasPrefix(dep, "github.com/hallpass/hallpass/") || strings.HasPrefix(dep, "golang.org/x/") || strings.HasPrefix(dep, "aidanwoods.dev/")
	})
}

func timeNow() time.Time { return time.Now() }
