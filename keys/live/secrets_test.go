package live_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/live"
	"github.com/hallpass/hallpass/keys/redisring"
	"github.com/hallpass/hallpass/refresh"
)

// clock is a settable clock shared by the nodes of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// secretBackend makes two stores on one storage, as two issuer nodes (or
// an issuer and `hallpass keys`) would hold them, with a ring already
// created, and removes the refresh-token keys and peppers (a ring made
// before they existed).
type secretBackend struct {
	name   string
	open   func(t *testing.T) (a, b live.SecretWatcher)
	forget func(t *testing.T) // drops the refresh keys and peppers
}

func secretBackends(t *testing.T) []secretBackend {
	t.Helper()
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	var srv *redistest.Server
	const prefix = "livetest"
	return []secretBackend{
		{
			name: "files",
			open: func(t *testing.T) (live.SecretWatcher, live.SecretWatcher) {
				dir = t.TempDir()
				prot, _ := filestore.WrapKey(w)
				var st [2]*filestore.Store
				for i := range st {
					st[i], _ = filestore.New(dir, prot, nil)
					st[i].PollInterval = 10 * time.Millisecond
				}
				if _, err := st[0].Init(context.Background(), time.Now()); err != nil {
					t.Fatal(err)
				}
				return st[0], st[1]
			},
			forget: func(t *testing.T) {
				for _, f := range []string{"local.json", "pepper.json"} {
					if err := os.Remove(filepath.Join(dir, f)); err != nil {
						t.Fatal(err)
					}
				}
			},
		},
		{
			name: "redis",
			open: func(t *testing.T) (live.SecretWatcher, live.SecretWatcher) {
				srv = redistest.Start(t)
				// st[2] makes the ring, so that the two nodes have seen
				// nothing before the test (forget makes a ring from
				// before the secrets and the head existed).
				var st [3]*redisring.Store
				for i := range st {
					c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
					t.Cleanup(func() { c.Close() })
					var err error
					if st[i], err = redisring.New(c, w, redisring.Options{Prefix: prefix, OpTimeout: 20 * time.Second, PollInterval: 50 * time.Millisecond}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := st[2].Init(context.Background(), time.Now()); err != nil {
					t.Fatal(err)
				}
				return st[0], st[1]
			},
			forget: func(t *testing.T) {
				c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
				defer c.Close()
				if err := c.Del(context.Background(), prefix+":{keys}:local", prefix+":{keys}:pepper", prefix+":{keys}:head").Err(); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
}

func mustSeal(t *testing.T, c *refresh.Codec, exp time.Time) string {
	t.Helper()
	tok, err := c.Seal(refresh.Claims{DeviceID: "dev_test", Counter: 1, IssuedAt: exp.Add(-time.Hour), ExpiresAt: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func opens(c *refresh.Codec, tok string) bool {
	_, err := c.Open(tok)
	return err == nil
}

// TestSecretsRefreshRotation, on files and on Redis, with two nodes that
// each follow the store: a rotation on one node seals with the new key at
// once there and, without a restart, on the other; both still open tokens
// of the replaced key until the keep has passed, then it is pruned and
// they stop opening; ending every session on one node makes every earlier
// token fail on both.
func TestSecretsRefreshRotation(t *testing.T) {
	const keep = 90 * 24 * time.Hour
	for _, be := range secretBackends(t) {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
			sa, sb := be.open(t)
			opts := live.SecretsOptions{Now: clk.Now, RefreshKeep: keep, PruneInterval: time.Hour}
			a, err := live.FollowSecrets(ctx, sa, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := live.FollowSecrets(ctx, sb, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			// Tokens expire long after the keep, so that only the key's
			// presence decides whether they open.
			exp := clk.Now().Add(3 * keep)
			before := a.Codec().KeyIDs()
			if !slices.Equal(before, b.Codec().KeyIDs()) {
				t.Fatal("the nodes start with different keys")
			}
			old := mustSeal(t, a.Codec(), exp)

			if err := a.RotateRefresh(ctx); err != nil {
				t.Fatal(err)
			}
			ids := a.Codec().KeyIDs()
			if len(ids) != 2 || ids[1] != before[0] || ids[0] == before[0] {
				t.Fatalf("after RotateRefresh node a holds %v; want a new key before %v", ids, before)
			}
			eventually(t, "node b follows the rotation", func() bool { return slices.Equal(b.Codec().KeyIDs(), ids) })
			fresh := mustSeal(t, b.Codec(), exp)
			for _, tc := range []struct {
				name string
				c    *refresh.Codec
				tok  string
			}{
				{"a opens the old token", a.Codec(), old},
				{"b opens the old token", b.Codec(), old},
				{"a opens b's new token", a.Codec(), fresh},
			} {
				if !opens(tc.c, tc.tok) {
					t.Errorf("%s: it does not", tc.name)
				}
			}

			// Pruning: not before the keep has passed, then on one node,
			// and the other follows.
			clk.Add(keep)
			if n, err := a.Prune(ctx); err != nil || n != 0 {
				t.Fatalf("Prune at the keep = %d, %v; want 0", n, err)
			}
			clk.Add(time.Second)
			if n, err := a.Prune(ctx); err != nil || n != 1 {
				t.Fatalf("Prune after the keep = %d, %v; want 1", n, err)
			}
			if opens(a.Codec(), old) {
				t.Fatal("a pruned key still opens on node a")
			}
			eventually(t, "node b drops the pruned key", func() bool { return !opens(b.Codec(), old) })
			if !opens(a.Codec(), fresh) || !opens(b.Codec(), fresh) {
				t.Fatal("pruning dropped the current key")
			}

			// End every session, on node b this time.
			if err := b.EndAllSessions(ctx); err != nil {
				t.Fatal(err)
			}
			if opens(b.Codec(), fresh) {
				t.Fatal("after EndAllSessions an earlier token still opens on node b")
			}
			eventually(t, "node a ends every session too", func() bool { return !opens(a.Codec(), fresh) })
			after := mustSeal(t, a.Codec(), exp)
			if !opens(b.Codec(), after) || len(a.Codec().KeyIDs()) != 1 {
				t.Fatal("after EndAllSessions the nodes do not share one new key")
			}
			_, err = a.Codec().Open(fresh)
			if !errors.Is(err, refresh.ErrInvalid) {
				t.Fatalf("an ended session's token: %v, want refresh.ErrInvalid", err)
			}
		})
	}
}

// TestSecretsPepper, on files and on Redis: a ring without a pepper gets
// one (and refresh-token keys) on open, which is logged by id only; the
// pepper survives a reload (a restart); a rotation keeps every older
// digest, here and, without a restart, on the other node; no pepper byte
// reaches the log.
func TestSecretsPepper(t *testing.T) {
	msg := []byte("hallpass recovery code\x00salt\x00ABCDE")
	for _, be := range secretBackends(t) {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			sa, sb := be.open(t)
			be.forget(t)
			var logs logbuf.Buffer
			opts := live.SecretsOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			a, err := live.FollowSecrets(ctx, sa, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for _, want := range []string{"created refresh-token keys", "created the pepper"} {
				if !bytes.Contains([]byte(logs.String()), []byte(want)) {
					t.Errorf("log lacks %q: %s", want, logs.String())
				}
			}
			first := a.Digests(msg)
			if len(first) != 1 || len(first[0]) != 32 {
				t.Fatalf("Digests = %d digests", len(first))
			}
			// A restart: another Secrets on the same storage.
			b, err := live.FollowSecrets(ctx, sb, live.SecretsOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if !slices.EqualFunc(b.Digests(msg), first, bytes.Equal) {
				t.Fatal("the pepper did not survive a reload")
			}
			if err := a.RotatePepper(ctx); err != nil {
				t.Fatal(err)
			}
			got := a.Digests(msg)
			if len(got) != 2 || bytes.Equal(got[0], first[0]) || !bytes.Equal(got[1], first[0]) {
				t.Fatal("after RotatePepper want a new current digest, then the old one")
			}
			eventually(t, "node b follows the pepper rotation", func() bool {
				return slices.EqualFunc(b.Digests(msg), got, bytes.Equal)
			})
			if !bytes.Equal(a.Digests([]byte("other"))[1], b.Digests([]byte("other"))[1]) {
				t.Fatal("the nodes digest under different peppers")
			}
			// Nothing of a pepper in the log (ids only).
			peppers, err := sa.LoadPeppers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range peppers {
				raw := p.Pepper.UnsafeLocalKey().UnsafeBytes()
				for _, enc := range []string{hex.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw), string(raw)} {
					if bytes.Contains([]byte(logs.String()), []byte(enc)) {
						t.Fatal("a pepper appears in the log")
					}
				}
			}
		})
	}
}

// failingStore makes Load calls fail on demand.
type failingStore struct {
	*filestore.Store
	fail atomic.Bool
}

var errDown = errors.New("store down")

func (f *failingStore) LoadLocal(ctx context.Context) ([]keys.LocalKeyEntry, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Store.LoadLocal(ctx)
}

func (f *failingStore) LoadPeppers(ctx context.Context) ([]keys.PepperEntry, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Store.LoadPeppers(ctx)
}

// TestSecretsReloadFailure: a reload that fails keeps the keys and
// peppers served and says so; the next change is served once the store
// answers again; Close stops both goroutines (goleak), twice is fine, and
// the Secrets still serve afterwards.
func TestSecretsReloadFailure(t *testing.T) {
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
	fs := &failingStore{Store: st}
	var logs logbuf.Buffer
	s, err := live.FollowSecrets(ctx, fs, live.SecretsOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil)), PruneInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ids := s.Codec().KeyIDs()
	msg := []byte("m")
	d := s.Digests(msg)

	other, _ := filestore.New(dir, prot, nil) // `hallpass keys` in another process
	fs.fail.Store(true)
	if err := other.RotateLocal(ctx, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := other.RotatePepper(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reload failures logged", func() bool {
		l := logs.String()
		return bytes.Contains([]byte(l), []byte("reloading the refresh-token keys failed")) && bytes.Contains([]byte(l), []byte("reloading the pepper failed"))
	})
	if !slices.Equal(s.Codec().KeyIDs(), ids) || !bytes.Equal(s.Digests(msg)[0], d[0]) {
		t.Fatal("a failed reload changed what is served")
	}
	fs.fail.Store(false)
	if err := other.RotatePepper(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "served again after the store came back", func() bool {
		return len(s.Codec().KeyIDs()) == 2 && len(s.Digests(msg)) == 3
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if len(s.Digests(msg)) != 3 || s.Codec() == nil {
		t.Fatal("closed Secrets must still serve")
	}
}

// TestSecretsOpenErrors: no store, a negative option, a store that does
// not answer, and a wrong secret are refused.
func TestSecretsOpenErrors(t *testing.T) {
	ctx := context.Background()
	w, _ := keys.GenerateWrappingKey(nil)
	prot, _ := filestore.WrapKey(w)
	dir := t.TempDir()
	st, _ := filestore.New(dir, prot, nil)
	if _, err := st.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	other, _ := keys.GenerateWrappingKey(nil)
	wrongProt, _ := filestore.WrapKey(other)
	wrong, _ := filestore.New(dir, wrongProt, nil)
	down := &failingStore{Store: st}
	down.fail.Store(true)
	for _, tc := range []struct {
		name string
		open func() (*live.Secrets, error)
		want error
	}{
		{"nil store", func() (*live.Secrets, error) { return live.OpenSecrets(ctx, nil, live.SecretsOptions{}) }, nil},
		{"nil watcher", func() (*live.Secrets, error) { return live.FollowSecrets(ctx, nil, live.SecretsOptions{}) }, nil},
		{"negative keep", func() (*live.Secrets, error) {
			return live.OpenSecrets(ctx, st, live.SecretsOptions{RefreshKeep: -time.Hour})
		}, nil},
		{"store down", func() (*live.Secrets, error) { return live.OpenSecrets(ctx, down, live.SecretsOptions{}) }, errDown},
		{"wrong wrapping key", func() (*live.Secrets, error) { return live.OpenSecrets(ctx, wrong, live.SecretsOptions{}) }, keys.ErrUnwrap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.open()
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
