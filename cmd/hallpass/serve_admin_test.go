package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/revocation"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/token"
)

// startServeAdmin is startServe with the admin listener on a free port; it
// returns the admin API's URL too.
func startServeAdmin(t *testing.T, environ map[string]string, args ...string) (*runningServer, string) {
	t.Helper()
	admin := make(chan string, 1)
	rs := startServeWith(t, environ, func(c *serveConfig) { c.adminBound = func(addr string) { admin <- addr } },
		append([]string{"--admin-listen", "127.0.0.1:0"}, args...)...)
	return rs, boundURL(t, admin, "admin")
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never 200")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeAdmin: `hallpass serve` with an admin keys file: the admin API
// on its own listener (404 on the public one), device revocation through
// `hallpass admin` refuses the device's token while another account keeps
// working, key rotation and revocation go through the key ring files, and
// every call leaves an audit line (and, on Redis, a stream entry).
func TestServeAdmin(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			keysFile := filepath.Join(data, "admin-keys")
			key := strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile, "--id", "ops").stdout)
			other := strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", filepath.Join(t.TempDir(), "other")).stdout)
			args := []string{"--dev", "--data", data, "--admin-keys-file", keysFile}
			var rc *redis.Client
			var mirror *revocation.Mirror // a verifier elsewhere, on the shared Redis
			var proc *mirrorProc          // and one in another process
			if backend == "redis" {
				srv := redistest.Start(t)
				proc = startMirrorProcess(t, srv.Addr())
				args = append(args, "--store", srv.URL())
				rc = redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
				t.Cleanup(func() { rc.Close() })
				rst, err := revredis.New(rc, revredis.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if mirror, err = revocation.NewMirror(rst, revocation.MirrorOptions{}); err != nil {
					t.Fatal(err)
				}
				mirror.Start()
				t.Cleanup(func() { mirror.Close() })
			}
			rs, adminURL := startServeAdmin(t, nil, args...)
			waitReady(t, rs.url)
			victim := newHTTPDevice(t, rs.url, nil)
			victim.signup(t, "victim")
			bystander := newHTTPDevice(t, rs.url, nil)
			bystander.signup(t, "bystander")

			if proc != nil {
				if v := proc.check(t, victim.access); v != "ok" {
					t.Fatalf("mirror process before the revocation: %s", v)
				}
			}
			env := map[string]string{adminKeyEnv: key, adminURLEnv: adminURL}
			// Refused: no key, a key of another file, the public listener.
			isUsage(t, runCmd(t, map[string]string{adminURLEnv: adminURL}, "admin", "revocations"))
			if r := runCmd(t, map[string]string{adminKeyEnv: other, adminURLEnv: adminURL}, "admin", "revocations"); r.err == nil || !strings.Contains(r.stderr, "unauthorized") {
				t.Fatalf("key of another file: %v %s", r.err, r.stderr)
			}
			if r := runCmd(t, map[string]string{adminKeyEnv: key, adminURLEnv: rs.url}, "admin", "revocations"); r.err == nil || !strings.Contains(r.stderr, "not_found") {
				t.Fatalf("public listener: %v %s", r.err, r.stderr)
			}

			r := runCmd(t, env, "admin", "account-by-username", "--username", "victim")
			if r.err != nil {
				t.Fatalf("%v %s", r.err, r.stderr)
			}
			accID := r.json(t)["id"].(string)
			r = runCmd(t, env, "admin", "devices", "--account", accID)
			if r.err != nil {
				t.Fatalf("%v %s", r.err, r.stderr)
			}
			devID := r.json(t)["devices"].([]any)[0].(map[string]any)["id"].(string)
			if r := runCmd(t, env, "admin", "revoke-device", "--device", devID); r.err != nil {
				t.Fatalf("revoke-device: %v %s", r.err, r.stderr)
			}
			if st, m := victim.do(t, "GET", "/v1/me", "", "", victim.access); st != 401 || m["code"] != "token_revoked" {
				t.Fatalf("victim after revoke: %d %v", st, m)
			}
			if bystander.me(t) != "bystander" {
				t.Fatal("bystander")
			}
			if mirror != nil {
				waitMirrorRefuses(t, mirror, victim.access, true)
				waitMirrorRefuses(t, mirror, bystander.access, false)
				proc.waitVerdict(t, victim.access, "revoked")
				if v := proc.check(t, bystander.access); v != "ok" {
					t.Fatalf("mirror process refuses the bystander: %s", v)
				}
			}
			// Keys: rotate, then revoke the old key; the published set lists
			// it as revoked at once and the bystander's token (signed by it)
			// is refused.
			r = runCmd(t, env, "admin", "rotate-keys")
			if r.err != nil {
				t.Fatalf("rotate: %v %s", r.err, r.stderr)
			}
			var oldKid string
			for _, k := range r.json(t)["keys"].([]any) {
				if m := k.(map[string]any); m["status"] == "retired" {
					oldKid = m["kid"].(string)
				}
			}
			if oldKid == "" {
				t.Fatalf("no retired key after rotation: %s", r.stdout)
			}
			if r := runCmd(t, env, "admin", "revoke-key", "--kid", oldKid); r.err != nil {
				t.Fatalf("revoke-key: %v %s", r.err, r.stderr)
			}
			res, err := http.Get(rs.url + "/.well-known/hallpass/keys")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(b), `"revoked":["`+oldKid) {
				t.Fatalf("published set: %s", b)
			}
			if st, m := bystander.do(t, "GET", "/v1/me", "", "", bystander.access); st != 401 {
				t.Fatalf("token of a revoked key: %d %v", st, m)
			}
			// Audit.
			logs := rs.logs.String()
			if n := strings.Count(logs, `"msg":"admin audit"`); n < 6 {
				t.Fatalf("%d audit lines, want 6 or more", n)
			}
			if !strings.Contains(logs, `"who":"ops"`) || !strings.Contains(logs, `"who":"-"`) {
				t.Fatal("audit lines without who")
			}
			if strings.Contains(logs, key) || strings.Contains(logs, other) {
				t.Fatal("an admin key reached the log")
			}
			if rc != nil {
				n, err := rc.XLen(context.Background(), "hallpass:{audit}:admin").Result()
				if err != nil || n < 6 {
					t.Fatalf("audit stream: %d %v", n, err)
				}
			}
		})
	}
}

// waitMirrorRefuses waits until m refuses tok (or checks it accepts tok).
func waitMirrorRefuses(t *testing.T, m *revocation.Mirror, tok string, refused bool) {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(b) < 64 {
		t.Fatal("bad token")
	}
	c, err := token.ParseClaims(b[:len(b)-64])
	if err != nil {
		t.Fatal(err)
	}
	f, err := token.UnsafeParseFooterKid(tok)
	if err != nil {
		t.Fatal(err)
	}
	<-m.Synced()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := m.CheckRevoked(context.Background(), f.Kid, c)
		if !refused {
			if err != nil {
				t.Fatalf("mirror refuses a token it should accept: %v", err)
			}
			return
		}
		if errors.Is(err, revocation.ErrRevoked) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror does not refuse the revoked token: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeAdminDisabled(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	if !strings.Contains(rs.logs.String(), "admin API disabled") {
		t.Fatal("no notice that the admin API is off")
	}
	if err := serveErr(t, nil, "--dev", "--data", t.TempDir(), "--admin-keys-file", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing keys file accepted")
	}
}

// TestServeRedisKeyRing: two nodes on one Redis with --key-ring redis share
// the ring and the refresh keys; a rotation and a key revocation through
// one node's admin API reach the other node's published key set.
func TestServeRedisKeyRing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := t.TempDir()
	wrap := newWrapKeyFile(t, dir)
	keysFile := filepath.Join(dir, "admin-keys")
	key := strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile).stdout)
	args := []string{"--store", srv.URL(), "--key-ring", "redis", "--wrap-key-file", wrap, "--admin-keys-file", keysFile}
	a, adminA := startServeAdmin(t, nil, append(args, "--data", t.TempDir())...)
	b, _ := startServeAdmin(t, nil, append(args, "--data", t.TempDir())...)
	keySet := func(base string) string {
		res, err := http.Get(base + "/.well-known/hallpass/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	kidsOf := func(doc string) string {
		var m struct {
			Keys []struct{ Kid, Status string } `json:"keys"`
		}
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(m.Keys)
	}
	if ka, kb := kidsOf(keySet(a.url)), kidsOf(keySet(b.url)); ka != kb {
		t.Fatalf("the nodes publish different keys: %s vs %s", ka, kb)
	}
	// A device signed up on A works on B (same ring, same refresh keys).
	d := newHTTPDevice(t, a.url, nil)
	d.signup(t, "shared")
	d.base = b.url
	d.refresh(t)
	if d.me(t) != "shared" {
		t.Fatal("wrong user on B")
	}
	env := map[string]string{adminKeyEnv: key, adminURLEnv: adminA}
	r := runCmd(t, env, "admin", "rotate-keys")
	if r.err != nil {
		t.Fatalf("rotate: %v %s", r.err, r.stderr)
	}
	var oldKid string
	for _, k := range r.json(t)["keys"].([]any) {
		if m := k.(map[string]any); m["status"] == "retired" {
			oldKid = m["kid"].(string)
		}
	}
	if r := runCmd(t, env, "admin", "revoke-key", "--kid", oldKid); r.err != nil {
		t.Fatalf("revoke-key: %v %s", r.err, r.stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(keySet(b.url), `"revoked":["`+oldKid) {
		if time.Now().After(deadline) {
			t.Fatalf("node B does not list the revoked key: %s", keySet(b.url))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// B signs with the new current key: a refresh there gives a token B accepts.
	d.refresh(t)
	if d.me(t) != "shared" {
		t.Fatal("after rotation")
	}
	if err := serveErr(t, nil, "--store", srv.URL(), "--key-ring", "redis", "--data", t.TempDir()); err == nil {
		t.Fatal("--key-ring redis without a wrapping key accepted")
	}
	if err := serveErr(t, nil, "--dev", "--key-ring", "redis", "--wrap-key-file", wrap, "--data", t.TempDir()); err == nil {
		t.Fatal("--key-ring redis on bbolt accepted")
	}
	// Another wrapping key does not open the ring, and the error says which
	// flag to fix (never the key).
	other := filepath.Join(dir, "other.key")
	if err := os.WriteFile(other, []byte(strings.Repeat("b", 43)), 0o600); err != nil {
		t.Fatal(err)
	}
	err := serveErr(t, nil, "--store", srv.URL(), "--key-ring", "redis", "--wrap-key-file", other, "--data", t.TempDir())
	if err == nil || !strings.HasPrefix(err.Error(), "--wrap-key-file: the wrapping key does not open the key ring in Redis") || strings.Contains(err.Error(), "bbb") {
		t.Fatalf("another wrapping key: %v", err)
	}
}

// TestServeAdminRevocationKinds: on Redis, each kind of revocation made
// through `hallpass admin` is refused by `hallpass serve` (token_revoked)
// and by a verifier mirror in another process; a bystander account is
// untouched by the scoped kinds.
func TestServeAdminRevocationKinds(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	proc := startMirrorProcess(t, srv.Addr())
	data := t.TempDir()
	keysFile := filepath.Join(data, "admin-keys")
	key := strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile).stdout)
	rs, adminURL := startServeAdmin(t, nil, "--dev", "--data", data, "--admin-keys-file", keysFile, "--store", srv.URL())
	waitReady(t, rs.url)
	env := map[string]string{adminKeyEnv: key, adminURLEnv: adminURL}
	bystander := newHTTPDevice(t, rs.url, nil)
	bystander.signup(t, "bystander")
	admin := func(args ...string) map[string]any {
		t.Helper()
		r := runCmd(t, env, append([]string{"admin"}, args...)...)
		if r.err != nil {
			t.Fatalf("admin %v: %v %s", args, r.err, r.stderr)
		}
		return r.json(t)
	}
	for i, tc := range []struct {
		kind   string
		revoke func(victim *httpDevice, accID string)
		scoped bool
	}{
		{kind: "token", scoped: true, revoke: func(v *httpDevice, _ string) {
			c, _, err := unsafeClaims(v.access)
			if err != nil {
				t.Fatal(err)
			}
			admin("revoke", "--kind", "token", "--id", c.ID)
		}},
		{kind: "account", scoped: true, revoke: func(_ *httpDevice, acc string) {
			admin("revoke", "--kind", "account", "--id", acc)
		}},
		{kind: "ban", scoped: true, revoke: func(_ *httpDevice, acc string) { admin("ban", "--account", acc) }},
		{kind: "all", revoke: func(*httpDevice, string) { admin("revoke", "--kind", "all") }},
		{kind: "key", revoke: func(v *httpDevice, _ string) {
			_, kid, err := unsafeClaims(v.access)
			if err != nil {
				t.Fatal(err)
			}
			admin("revoke-key", "--kid", string(kid))
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			if tc.kind == "all" || tc.kind == "key" {
				time.Sleep(time.Second) // the epoch is per microsecond, but iat is per second
			}
			victim := newHTTPDevice(t, rs.url, nil)
			victim.signup(t, fmt.Sprintf("victim%d", i))
			if tc.kind == "key" {
				// A token from after the "all" epoch, signed by the current key.
				victim.refresh(t)
			}
			acc := admin("account-by-username", "--username", fmt.Sprintf("victim%d", i))["id"].(string)
			if v := proc.check(t, victim.access); v != "ok" {
				t.Fatalf("before: %s", v)
			}
			tc.revoke(victim, acc)
			proc.waitVerdict(t, victim.access, "revoked")
			if st, m := victim.do(t, "GET", "/v1/me", "", "", victim.access); st != 401 || m["code"] != "token_revoked" {
				t.Fatalf("/v1/me: %d %v", st, m)
			}
			if tc.scoped {
				if v := proc.check(t, bystander.access); v != "ok" {
					t.Fatalf("bystander refused by the mirror: %s", v)
				}
				if bystander.me(t) != "bystander" {
					t.Fatal("bystander")
				}
			}
		})
	}
}
