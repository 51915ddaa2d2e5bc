package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
)

// testIssuer serves the real issuer on the embedded store.
func testIssuer(t *testing.T) string {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "hallpass.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
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
	hs := httptest.NewUnstartedServer(nil)
	hs.Start()
	t.Cleanup(hs.Close)
	srv, err := issuer.New(issuer.Config{
		PublicURL: hs.URL, Store: store, Keys: ring, Refresh: codec,
		DPoP: issuer.DPoPConfig{Replay: replay}, Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	return hs.URL
}

type cmdResult struct {
	stdout, stderr string
	err            error
}

func runCmd(t *testing.T, environ map[string]string, args ...string) cmdResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }}
	err := run(context.Background(), args, e)
	return cmdResult{out.String(), errb.String(), err}
}

func (r cmdResult) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not JSON: %q (stderr %q, err %v)", r.stdout, r.stderr, r.err)
	}
	return m
}

// failedWith checks a failure printed exactly one stderr line with code.
func (r cmdResult) failedWith(t *testing.T, code string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("command succeeded: %q", r.stdout)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, ": "+code+": ") {
		t.Fatalf("stderr %q does not carry code %s", r.stderr, code)
	}
	if r.stdout != "" {
		t.Fatalf("stdout on failure: %q", r.stdout)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestClientCommandsKeyFile(t *testing.T) {
	url := testIssuer(t)
	state := filepath.Join(t.TempDir(), "alice.state")

	r := runCmd(t, nil, "client", "signup", "--server", url, "--username", "alice", "--state", state)
	if r.err != nil {
		t.Fatalf("signup: %v\n%s", r.err, r.stderr)
	}
	su := r.json(t)
	if su["username"] != "alice" || !strings.HasPrefix(su["account_id"].(string), "acc_") || su["key_file"] != state+".key" {
		t.Fatalf("signup output %v", su)
	}
	if _, ok := su["access_token"]; ok || strings.Contains(r.stdout, "refresh") {
		t.Fatal("signup printed a token")
	}
	if !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, state+".key") {
		t.Fatalf("no key-file warning: %q", r.stderr)
	}
	if mode(t, state) != 0o600 || mode(t, state+".key") != 0o600 {
		t.Fatal("state or key file is not 0600")
	}

	r = runCmd(t, nil, "client", "me", "--state", state)
	if r.err != nil {
		t.Fatalf("me: %v\n%s", r.err, r.stderr)
	}
	if me := r.json(t); me["account_id"] != su["account_id"] || me["device_id"] != su["device_id"] || me["username"] != "alice" {
		t.Fatalf("me output %v", me)
	}

	r = runCmd(t, nil, "client", "refresh", "--state", state)
	if r.err != nil {
		t.Fatalf("refresh: %v\n%s", r.err, r.stderr)
	}
	if rs := r.json(t); rs["access_token_expires_at"] == nil || rs["account_id"] != su["account_id"] {
		t.Fatalf("refresh output %v", rs)
	}

	runCmd(t, nil, "client", "signup", "--server", url, "--username", "alice2", "--state", state).failedWith(t, "already_signed_up")

	// Someone else's signup with a taken name gets the server's code, and
	// leaves no key file behind.
	other := filepath.Join(t.TempDir(), "bob.state")
	runCmd(t, nil, "client", "signup", "--server", url, "--username", "ALICE", "--state", other).failedWith(t, "username_taken")
	if _, err := os.Stat(other + ".key"); !os.IsNotExist(err) {
		t.Fatal("failed signup left its key file")
	}

	r = runCmd(t, nil, "client", "logout", "--state", state)
	if r.err != nil {
		t.Fatalf("logout: %v\n%s", r.err, r.stderr)
	}
	if lo := r.json(t); lo["logged_out"] != true {
		t.Fatalf("logout output %v", lo)
	}
	runCmd(t, nil, "client", "me", "--state", state).failedWith(t, "no_session")

	// A logged-out state file may be reused for a new signup.
	r = runCmd(t, nil, "client", "signup", "--server", url, "--username", "alice3", "--state", state, "--alg", "EdDSA")
	if r.err != nil {
		t.Fatalf("signup again: %v\n%s", r.err, r.stderr)
	}

	// A key file others can read is refused.
	if err := os.Chmod(state+".key", 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, nil, "client", "me", "--state", state).failedWith(t, "error")
}

func TestClientCommandsPassphrase(t *testing.T) {
	defer func(p keys.Argon2Params) { clientArgon2 = p }(clientArgon2)
	clientArgon2 = keys.Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 1}
	url := testIssuer(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "s.state")
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("file passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runCmd(t, nil, "client", "signup", "--server", url, "--username", "carol", "--state", state, "--passphrase-file", pwFile)
	if r.err != nil {
		t.Fatalf("signup: %v\n%s", r.err, r.stderr)
	}
	if r.stderr != "" {
		t.Fatalf("unexpected stderr %q", r.stderr)
	}
	if _, err := os.Stat(state + ".key"); !os.IsNotExist(err) {
		t.Fatal("key file written although a passphrase was given")
	}
	// The trailing newline of the file is not part of the passphrase.
	env := map[string]string{clientPassphraseEnv: "file passphrase"}
	if r := runCmd(t, env, "client", "me", "--state", state); r.err != nil || r.json(t)["username"] != "carol" {
		t.Fatalf("me with env passphrase: %v %s", r.err, r.stderr)
	}
	runCmd(t, map[string]string{clientPassphraseEnv: "wrong"}, "client", "me", "--state", state).failedWith(t, "state_decrypt")
	runCmd(t, nil, "client", "me", "--state", state).failedWith(t, "not_found") // no passphrase, no key file

	raw, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("v4.public.")) || bytes.Contains(raw, []byte("v4.local.")) || bytes.Contains(raw, []byte("carol")) {
		t.Fatal("state file shows plaintext")
	}
}

func TestClientCommandsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"client"},
		{"client", "nope"},
		{"client", "signup", "--state", "x"},
		{"client", "signup", "--server", "http://127.0.0.1:1", "--username", "u", "--state", "x", "--alg", "RS256"},
		{"client", "me"},
	} {
		r := runCmd(t, nil, args...)
		if r.err == nil {
			t.Fatalf("%v succeeded", args)
		}
		if !strings.Contains(r.err.Error(), errUsage.Error()) {
			t.Fatalf("%v: %v, want a usage error", args, r.err)
		}
	}
	// A server that does not answer: one line, no hang.
	state := filepath.Join(t.TempDir(), "s")
	r := runCmd(t, map[string]string{clientPassphraseEnv: "pw"}, "client", "signup", "--server", "http://127.0.0.1:1", "--username", "u", "--state", state)
	r.failedWith(t, "error")
}
