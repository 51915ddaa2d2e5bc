package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
)

type adminIssuer struct {
	publicURL, adminURL, keysFile string
	ring                          *keys.Ring
	mirror                        *revocation.Mirror
}

// testAdminIssuer serves the real issuer and its admin API on two
// listeners, with a bbolt revocation store and a running mirror.
func testAdminIssuer(t *testing.T) *adminIssuer {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "hallpass.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rs, err := revbolt.Open(filepath.Join(dir, "revocation.db"), revbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := revocation.NewMirror(rs, revocation.MirrorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() { m.Close(); rs.Close() })
	ring, err := keys.NewRing(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	lk, err := keys.GenerateLocalKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := refresh.NewCodec(time.Now, lk)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(dir, "admin-keys")
	hs := httptest.NewUnstartedServer(nil)
	hs.Start()
	t.Cleanup(hs.Close)
	as := httptest.NewUnstartedServer(nil)
	as.Start()
	t.Cleanup(as.Close)
	srv, err := issuer.New(issuer.Config{
		PublicURL: hs.URL, Store: store, Keys: ring, Refresh: codec,
		DPoP: issuer.DPoPConfig{Replay: replay}, Registry: prometheus.NewRegistry(),
		Revocations: rs, RevocationMirror: m, AdminKeysFile: keysFile,
		KeyManager: memRingManager{ring}, SignupLimitsOff: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	as.Config.Handler = srv.AdminHandler()
	<-m.Synced()
	return &adminIssuer{publicURL: hs.URL, adminURL: as.URL, keysFile: keysFile, ring: ring, mirror: m}
}

type memRingManager struct{ r *keys.Ring }

func (m memRingManager) Rotate(context.Context) error { return m.r.Rotate(nil, time.Now()) }
func (m memRingManager) Revoke(_ context.Context, kid keys.KeyID) error {
	return m.r.Revoke(kid, nil, time.Now())
}

var keyLine = regexp.MustCompile(`^sha256:[0-9a-f]{64} [A-Za-z0-9._-]+ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestAdminKeyNew(t *testing.T) {
	file := filepath.Join(t.TempDir(), "admin-keys")
	r := runCmd(t, nil, "admin-key", "new", "--keys-file", file, "--id", "ops-1")
	if r.err != nil {
		t.Fatalf("%v %s", r.err, r.stderr)
	}
	if !regexp.MustCompile(`^hpadm_[A-Za-z0-9_-]{43}\n$`).MatchString(r.stdout) {
		t.Fatalf("stdout %q: want the key alone", r.stdout)
	}
	if m := mode(t, file); m != 0o600 {
		t.Fatalf("mode %v", m)
	}
	r2 := runCmd(t, nil, "admin-key", "new", "--keys-file", file)
	if r2.err != nil || r2.stdout == r.stdout {
		t.Fatalf("second key: %v %q", r2.err, r2.stdout)
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("file %q", b)
	}
	for _, l := range lines {
		if !keyLine.MatchString(l) {
			t.Errorf("line %q", l)
		}
		if strings.Contains(l, strings.TrimSpace(r.stdout)) || strings.Contains(l, strings.TrimSpace(r2.stdout)) {
			t.Error("the key itself is in the file")
		}
	}
	if !strings.Contains(lines[0], " ops-1 ") {
		t.Errorf("id missing: %q", lines[0])
	}
	// A file others can read is refused.
	os.Chmod(file, 0o644)
	if r := runCmd(t, nil, "admin-key", "new", "--keys-file", file); r.err == nil {
		t.Fatal("appended to a world-readable file")
	}
	isUsage(t, runCmd(t, nil, "admin-key", "new"))
}

func TestAdminCommands(t *testing.T) {
	ai := testAdminIssuer(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "alice.state")
	if r := runCmd(t, nil, "client", "signup", "--server", ai.publicURL, "--username", "alice", "--state", state); r.err != nil {
		t.Fatalf("signup: %v %s", r.err, r.stderr)
	}
	r := runCmd(t, nil, "client", "devices", "--state", state)
	if r.err != nil || !strings.Contains(r.stdout, `"current": true`) {
		t.Fatalf("client devices: %v %s %s", r.err, r.stdout, r.stderr)
	}
	runCmd(t, nil, "client", "revoke-device", "--state", state, "--device", "dev_AAAAAAAAAAAAAAAAAAAAAA").failedWith(t, "not_found")
	isUsage(t, runCmd(t, nil, "client", "revoke-device", "--state", state))

	key := strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", ai.keysFile, "--id", "ops").stdout)
	env := map[string]string{adminKeyEnv: key, adminURLEnv: ai.adminURL}

	// Refusals.
	isUsage(t, runCmd(t, map[string]string{adminURLEnv: ai.adminURL}, "admin", "revocations"))
	if r := runCmd(t, map[string]string{adminKeyEnv: "hpadm_wrong", adminURLEnv: ai.adminURL}, "admin", "revocations"); r.err == nil || !strings.Contains(r.stderr, "unauthorized") {
		t.Fatalf("wrong key: %v %q", r.err, r.stderr)
	}
	if r := runCmd(t, map[string]string{adminKeyEnv: key}, "admin", "revocations", "--admin-url", "http://example.com:9090"); r.err == nil {
		t.Fatal("plain http to a non-loopback host accepted")
	}
	if r := runCmd(t, map[string]string{adminKeyEnv: key, adminURLEnv: ai.publicURL}, "admin", "revocations"); r.err == nil || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("admin call on the public listener: %v %q", r.err, r.stderr)
	}

	r = runCmd(t, env, "admin", "account-by-username", "--username", "ALICE")
	if r.err != nil {
		t.Fatalf("%v %s", r.err, r.stderr)
	}
	accID, _ := r.json(t)["id"].(string)
	r = runCmd(t, env, "admin", "devices", "--account", accID)
	if r.err != nil {
		t.Fatalf("%v %s", r.err, r.stderr)
	}
	devs := r.json(t)["devices"].([]any)
	devID := devs[0].(map[string]any)["id"].(string)
	if r := runCmd(t, env, "admin", "account", "--account", accID); r.err != nil || r.json(t)["username"] != "alice" {
		t.Fatalf("account: %v %s", r.err, r.stdout)
	}
	if r := runCmd(t, env, "admin", "revoke-device", "--device", devID); r.err != nil {
		t.Fatalf("revoke-device: %v %s", r.err, r.stderr)
	}
	if r := runCmd(t, nil, "client", "me", "--state", state); r.err == nil {
		t.Fatal("me after admin revoke-device")
	}
	if r := runCmd(t, env, "admin", "ban", "--account", accID); r.err != nil || r.json(t)["banned"] != true {
		t.Fatalf("ban: %v %s", r.err, r.stdout)
	}
	if r := runCmd(t, env, "admin", "unban", "--account", accID); r.err != nil || r.json(t)["banned"] != false {
		t.Fatalf("unban: %v %s", r.err, r.stdout)
	}
	r = runCmd(t, env, "admin", "revoke", "--kind", "token", "--id", "some-jti-value", "--reason", "test")
	if r.err != nil || r.json(t)["kind"] != "token" || r.json(t)["expires"] == nil {
		t.Fatalf("revoke: %v %s %s", r.err, r.stdout, r.stderr)
	}
	if r := runCmd(t, env, "admin", "revoke", "--kind", "bogus", "--id", "x"); r.err == nil || !strings.Contains(r.stderr, "invalid_request") {
		t.Fatalf("bad kind: %v %s", r.err, r.stderr)
	}
	r = runCmd(t, env, "admin", "revocations")
	if r.err != nil || len(r.json(t)["entries"].([]any)) < 3 {
		t.Fatalf("revocations: %v %s", r.err, r.stdout)
	}
	old := ai.ring.Current().ID()
	if r := runCmd(t, env, "admin", "rotate-keys"); r.err != nil || ai.ring.Current().ID() == old {
		t.Fatalf("rotate: %v %s", r.err, r.stderr)
	}
	r = runCmd(t, env, "admin", "revoke-key", "--kid", string(old))
	if r.err != nil || !strings.Contains(r.stdout, string(old)) {
		t.Fatalf("revoke-key: %v %s %s", r.err, r.stdout, r.stderr)
	}
	isUsage(t, runCmd(t, env, "admin", "nope"))
}

func isUsage(t *testing.T, r cmdResult) {
	t.Helper()
	if !errors.Is(r.err, errUsage) {
		t.Fatalf("want a usage error, got %v (stderr %q)", r.err, r.stderr)
	}
}
