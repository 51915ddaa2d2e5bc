package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

// testClock is a settable clock for the served key ring.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startServeHooked is startServe with the admin listener on a free port
// and hook applied to the parsed configuration; it returns the admin URL.
func startServeHooked(t *testing.T, hook func(*serveConfig), args ...string) (*runningServer, string) {
	t.Helper()
	admin := make(chan string, 1)
	rs := startServeWith(t, nil, func(c *serveConfig) {
		c.adminBound = func(addr string) { admin <- addr }
		if hook != nil {
			hook(c)
		}
	}, append([]string{"--admin-listen", "127.0.0.1:0"}, args...)...)
	return rs, "http://" + <-admin
}

// adminPost calls the admin API with key and decodes the JSON answer.
func adminPost(t *testing.T, adminURL, key, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, adminURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func publishedKeys(t *testing.T, base string) keys.KeySetDocument {
	t.Helper()
	var ks keys.KeySetDocument
	if err := json.Unmarshal([]byte(getBody(t, base+"/.well-known/hallpass/keys")), &ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

func kidsWith(ks keys.KeySetDocument, st keys.Status) []keys.KeyID {
	var out []keys.KeyID
	for _, k := range ks.Keys {
		if k.Status == st {
			out = append(out, k.Kid)
		}
	}
	return out
}

// storedEntry is a key as a ring store writes it (ring.json, or the doc
// of the Redis value).
type storedEntry struct {
	Kid    keys.KeyID  `json:"kid"`
	Status keys.Status `json:"status"`
	Secret string      `json:"secret"`
}

// adminSetup makes a wrapping key and an admin key in dir.
func adminSetup(t *testing.T, dir string) (wrap, keysFile, key string) {
	t.Helper()
	wrap = newWrapKeyFile(t, dir)
	keysFile = filepath.Join(dir, "admin-keys")
	key = strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile, "--id", "ops").stdout)
	return wrap, keysFile, key
}

// ringUnderTest makes a files ring in dir, or starts a Redis, and returns
// serve's flags for it and a reader of the stored signing keys.
func ringUnderTest(t *testing.T, ring, dir, wrap string) ([]string, func() []storedEntry) {
	t.Helper()
	if ring == "files" {
		keysDir := filepath.Join(dir, "keys")
		if r := runCmd(t, nil, "keys", "init", "--dir", keysDir, "--wrap-key-file", wrap); r.err != nil {
			t.Fatalf("%v: %s", r.err, r.stderr)
		}
		return []string{"--keys-dir", keysDir}, func() []storedEntry {
			b, _ := os.ReadFile(filepath.Join(keysDir, "ring.json"))
			var f struct{ Keys []storedEntry }
			json.Unmarshal(b, &f)
			return f.Keys
		}
	}
	srv := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rc.Close() })
	return []string{"--store", srv.URL(), "--key-ring", "redis"}, func() []storedEntry {
		var env struct {
			Doc struct{ Keys []storedEntry } `json:"doc"`
		}
		json.Unmarshal([]byte(rc.Get(context.Background(), "hallpass:{keys}:ring").Val()), &env)
		return env.Doc.Keys
	}
}

// TestServeAdminRotatePrunes is issue 11, finding 5: after five
// POST /v1/admin/keys/rotate, five retired keys sat in the ring with
// their wrapped secrets, published and trusted by every verifier forever
// (only the CLI pruned, after --prune-after). Now, on a files ring and on
// a Redis ring, no retired key is stored with a secret, and once the
// longest token lifetime plus leeway has passed they leave the published
// key set (here at the next rotation; a timer does it too, see keys/live
// TestRotationPrunes).
func TestServeAdminRotatePrunes(t *testing.T) {
	t.Parallel()
	for _, ring := range []string{"files", "redis"} {
		t.Run(ring, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			wrap, keysFile, key := adminSetup(t, dir)
			args, stored := ringUnderTest(t, ring, dir, wrap)
			args = append(args, "--data", filepath.Join(dir, "data"), "--wrap-key-file", wrap, "--admin-keys-file", keysFile)
			clk := &testClock{t: time.Now()}
			rs, adminURL := startServeHooked(t, func(c *serveConfig) { c.keyClock = clk.Now }, args...)
			for range 5 {
				clk.Add(keys.MinNextAge) // the next key is old enough to sign
				adminPost(t, adminURL, key, "/v1/admin/keys/rotate", nil)
			}
			var retired []keys.KeyID
			for _, e := range stored() {
				if e.Status == keys.StatusRetired {
					retired = append(retired, e.Kid)
					if e.Secret != "" {
						t.Errorf("retired key %s is stored with its secret", e.Kid)
					}
				}
			}
			if len(retired) != 5 || len(kidsWith(publishedKeys(t, rs.url), keys.StatusRetired)) != 5 {
				t.Fatalf("%d retired keys stored, want 5 (published: %v)", len(retired), publishedKeys(t, rs.url))
			}

			clk.Add(keys.DefaultRetiredKeep + time.Second)
			adminPost(t, adminURL, key, "/v1/admin/keys/rotate", nil)
			still := kidsWith(publishedKeys(t, rs.url), keys.StatusRetired)
			if len(still) != 1 {
				t.Fatalf("published retired keys after the lifetime: %v, want only the one retired now", still)
			}
			for _, k := range retired {
				if k == still[0] {
					t.Fatalf("retired key %s still published after the lifetime", k)
				}
			}
		})
	}
}

// TestServeRefusesRedisRollback plays issue 11, finding 1, against the
// server: a key is revoked through the admin API, then someone with
// access to Redis but not the wrapping key writes the older ring back and
// bumps the version counter. The node keeps serving the ring it had (the
// revoked key stays revoked and does not sign), logs the refusal and
// counts it in hallpass_key_ring_rollback_refused_total; restarted on the
// same data directory it refuses to start on that ring, and so does a new
// node.
func TestServeRefusesRedisRollback(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := t.TempDir()
	wrap, keysFile, key := adminSetup(t, dir)
	args := []string{"--store", srv.URL(), "--key-ring", "redis", "--wrap-key-file", wrap, "--admin-keys-file", keysFile, "--data", filepath.Join(dir, "a")}
	rs, adminURL := startServeHooked(t, nil, args...)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	ctx := context.Background()
	old := rc.Get(ctx, "hallpass:{keys}:ring").Val()
	revoked := kidsWith(publishedKeys(t, rs.url), keys.StatusCurrent)[0]
	adminPost(t, adminURL, key, "/v1/admin/keys/"+string(revoked)+"/revoke", nil)

	rc.Set(ctx, "hallpass:{keys}:ring", old, 0)
	rc.Incr(ctx, "hallpass:{keys}:version")
	const metric = `hallpass_key_ring_rollback_refused_total{document="ring"} 1`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(getBody(t, adminURL+"/metrics"), metric) || !strings.Contains(rs.logs.String(), "key ring rollback refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no alert: metrics lack %s, or no log line\n%s", metric, rs.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ks := publishedKeys(t, rs.url)
	if cur := kidsWith(ks, keys.StatusCurrent); len(cur) != 1 || cur[0] == revoked || len(ks.Revoked) != 1 || ks.Revoked[0] != revoked {
		t.Fatalf("after the rollback the node publishes %+v; want %s still revoked", ks, revoked)
	}
	rs.stop(t)

	for name, data := range map[string]string{"restarted node": filepath.Join(dir, "a"), "new node": filepath.Join(dir, "b")} {
		err := serveErr(t, nil, append(args, "--data", data)...)
		if !errors.Is(err, redisring.ErrRollback) || !strings.Contains(err.Error(), "rollback") {
			t.Errorf("%s: serve = %v, want a refusal (redisring.ErrRollback)", name, err)
		}
	}
}

// TestServeRotateEvery: --rotate-every turns on scheduled rotation (every
// node checks each minute; the ring's store makes nodes due at once rotate
// once, see keys/live TestRotateIfDue), and refuses a period under an hour.
func TestServeRotateEvery(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10m", "-1h"} {
		err := serveErr(t, nil, "--dev", "--data", t.TempDir(), "--rotate-every", bad)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--rotate-every") {
			t.Errorf("--rotate-every %s: %v, want a usage error naming the flag", bad, err)
		}
	}
	rs := startServe(t, map[string]string{"HALLPASS_ROTATE_EVERY": "24h"}, "--dev", "--data", t.TempDir())
	if !strings.Contains(rs.logs.String(), "the signing key rotates on schedule") || !strings.Contains(rs.logs.String(), `"rotate_every":"24h0m0s"`) {
		t.Fatalf("no schedule in the start-up log:\n%s", rs.logs.String())
	}
}

// TestKeysRotateTooSoon: `hallpass keys rotate` run again right after a
// rotation refuses (keys.ErrNextTooNew, exit status 1, one line saying when
// it may rotate) and leaves the ring as it was: the next key the first run
// made has not been published keys.MinNextAge, so verifiers may not know it.
func TestKeysRotateTooSoon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wrap := filepath.Join(dir, "wrap.key")
	if err := os.WriteFile(wrap, []byte(strings.Repeat("a", 43)), 0o600); err != nil {
		t.Fatal(err)
	}
	ring := []string{"--dir", filepath.Join(dir, "keys"), "--wrap-key-file", wrap}
	for _, cmd := range []string{"init", "rotate"} {
		if r := runCmd(t, nil, append([]string{"keys", cmd}, ring...)...); r.err != nil {
			t.Fatalf("keys %s: %v %s", cmd, r.err, r.stderr)
		}
	}
	list := []string{"keys", "list", "--dir", filepath.Join(dir, "keys"), "--json"}
	before := runCmd(t, nil, list...)
	r := runCmd(t, nil, append([]string{"keys", "rotate"}, ring...)...)
	if !errors.Is(r.err, keys.ErrNextTooNew) {
		t.Fatalf("second keys rotate at once: %v, want %v", r.err, keys.ErrNextTooNew)
	}
	var stderr strings.Builder
	if code := exitStatus(&stderr, r.err); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	if line := stderr.String(); !strings.HasPrefix(line, "hallpass: keys: next key published too recently to sign") ||
		!strings.Contains(line, "rotate after ") || strings.Count(line, "\n") != 1 {
		t.Fatalf("stderr %q", line)
	}
	if after := runCmd(t, nil, list...); before.err != nil || after.err != nil || after.stdout != before.stdout {
		t.Fatalf("a refused rotation changed the ring:\n%s\nwas\n%s", after.stdout, before.stdout)
	}
}
