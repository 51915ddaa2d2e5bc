package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
)

// testIssuer serves the real issuer on the embedded store.
func testIssuer(t *testing.T) string {
	t.Helper()
	return testIssuerWrapped(t, nil)
}

// testIssuerWrapped is testIssuer with the issuer's handler wrapped by wrap
// (nil: none), on the issuer's own URL, so that proofs still match it.
func testIssuerWrapped(t *testing.T, wrap func(http.Handler) http.Handler) string {
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
	pepper := make([]byte, 32)
	rand.Read(pepper)
	hs := httptest.NewUnstartedServer(nil)
	hs.Start()
	t.Cleanup(hs.Close)
	srv, err := issuer.New(issuer.Config{
		PublicURL: hs.URL, Store: store, Keys: ring, Refresh: codec,
		DPoP: issuer.DPoPConfig{Replay: replay}, Registry: prometheus.NewRegistry(),
		Pepper: flow.StaticPepper{pepper}, SignupLimitsOff: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	hs.Config.Handler = h
	return hs.URL
}

type cmdResult struct {
	stdout, stderr string
	err            error
}

func runCmd(t *testing.T, environ map[string]string, args ...string) cmdResult {
	t.Helper()
	return runCmdIn(t, environ, "", args...)
}

// runCmdIn is runCmd with stdin.
func runCmdIn(t *testing.T, environ map[string]string, stdin string, args ...string) cmdResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }}
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

// ok fails the test unless the command succeeded.
func (r cmdResult) ok(t *testing.T, what string) cmdResult {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v\n%s", what, r.err, r.stderr)
	}
	return r
}

// TestClientLifecycleCommands walks the account life cycle from the
// shell: phone A signs up and makes recovery codes and a link code, tablet
// B links, A is lost and B logs out, phone C recovers with a code (same
// account id and username), renames, then deletes the account.
func TestClientLifecycleCommands(t *testing.T) {
	url := testIssuer(t)
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.state"), filepath.Join(dir, "b.state"), filepath.Join(dir, "c.state")

	su := runCmd(t, nil, "client", "signup", "--server", url, "--username", "walker", "--device-name", "phone A", "--state", a).ok(t, "signup").json(t)

	r := runCmd(t, nil, "client", "recovery-codes", "--state", a).ok(t, "recovery-codes")
	if codes, _ := r.json(t)["codes"].([]any); len(codes) != 10 {
		t.Fatalf("recovery-codes printed %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "warning") || !strings.Contains(r.stderr, "shown only now") {
		t.Fatalf("no warning to store the codes: %q", r.stderr)
	}
	// A new set replaces the first; --text prints one per line.
	r = runCmd(t, nil, "client", "recovery-codes", "--state", a, "--text").ok(t, "recovery-codes --text")
	codes := strings.Fields(r.stdout)
	if len(codes) != 10 || strings.Count(r.stdout, "\n") != 10 {
		t.Fatalf("recovery-codes --text printed %q", r.stdout)
	}
	if me := runCmd(t, nil, "client", "me", "--state", a).ok(t, "me").json(t); me["recovery_codes_left"] != float64(10) {
		t.Fatalf("me %v", me)
	}

	lc := runCmd(t, nil, "client", "link-code", "--state", a).ok(t, "link-code").json(t)
	if code, _ := lc["code"].(string); len(code) != 14 || lc["expires_at"] == nil {
		t.Fatalf("link-code printed %v", lc)
	}
	link := strings.TrimSpace(runCmd(t, nil, "client", "link-code", "--state", a, "--text").ok(t, "link-code --text").stdout)
	lb := runCmdIn(t, nil, link+"\n", "client", "link", "--server", url, "--code", "-", "--device-name", "tablet B", "--state", b).ok(t, "link").json(t)
	if lb["account_id"] != su["account_id"] || lb["username"] != "walker" || lb["device_id"] == su["device_id"] || lb["state_file"] != b {
		t.Fatalf("link printed %v (signup %v)", lb, su)
	}
	runCmd(t, nil, "client", "link", "--server", url, "--code", link, "--state", filepath.Join(dir, "x.state")).failedWith(t, "invalid_link_code")
	if _, err := os.Stat(filepath.Join(dir, "x.state.key")); !os.IsNotExist(err) {
		t.Fatal("a refused link left its key file")
	}
	runCmd(t, nil, "client", "link", "--server", url, "--code", lc["code"].(string), "--state", b).failedWith(t, "already_signed_up")
	if devs := runCmd(t, nil, "client", "devices", "--state", b).ok(t, "devices").json(t)["devices"].([]any); len(devs) != 2 {
		t.Fatalf("devices %v", devs)
	}

	// Phone A is lost, tablet B is gone too.
	os.Remove(a)
	os.Remove(a + ".key")
	runCmd(t, nil, "client", "logout", "--state", b).ok(t, "logout")

	rc := runCmdIn(t, nil, codes[0]+"\n", "client", "recover", "--server", url, "--username", "WALKER", "--code", "-", "--device-name", "phone C", "--state", c).ok(t, "recover").json(t)
	if rc["account_id"] != su["account_id"] || rc["username"] != "walker" {
		t.Fatalf("recover printed %v, want account %v walker", rc, su["account_id"])
	}
	if me := runCmd(t, nil, "client", "me", "--state", c).ok(t, "me").json(t); me["account_id"] != su["account_id"] || me["recovery_codes_left"] != float64(9) {
		t.Fatalf("me on phone C %v", me)
	}
	for _, bad := range []struct{ user, code string }{{"walker", codes[0]}, {"nobody", codes[1]}} {
		runCmd(t, nil, "client", "recover", "--server", url, "--username", bad.user, "--code", bad.code, "--state", filepath.Join(dir, "y.state")).failedWith(t, "invalid_recovery_code")
	}

	if me := runCmd(t, nil, "client", "rename", "--state", c, "--username", "walker2").ok(t, "rename").json(t); me["username"] != "walker2" || me["account_id"] != su["account_id"] {
		t.Fatalf("rename printed %v", me)
	}
	runCmd(t, nil, "client", "signup", "--server", url, "--username", "taken", "--state", filepath.Join(dir, "t.state")).ok(t, "signup taken")
	runCmd(t, nil, "client", "rename", "--state", c, "--username", "TAKEN").failedWith(t, "username_taken")

	// Delete: refused without a terminal and without --yes, and on a
	// wrong answer; done when the username is typed.
	runCmd(t, nil, "client", "delete", "--state", c).failedWith(t, "not_confirmed")
	defer func(f func(io.Reader) bool) { isTerminal = f }(isTerminal)
	isTerminal = func(io.Reader) bool { return true }
	r = runCmdIn(t, nil, "walker\n", "client", "delete", "--state", c)
	r.failedWith(t, "not_confirmed")
	if !strings.Contains(r.stderr, "Type the username") {
		t.Fatalf("no question asked: %q", r.stderr)
	}
	runCmd(t, nil, "client", "me", "--state", c).ok(t, "me after a refused delete")
	del := runCmdIn(t, nil, "Walker2\n", "client", "delete", "--state", c).ok(t, "delete").json(t)
	if del["deleted"] != true || del["account_id"] != su["account_id"] || del["username"] != "walker2" {
		t.Fatalf("delete printed %v", del)
	}
	runCmd(t, nil, "client", "me", "--state", c).failedWith(t, "no_session")
	runCmd(t, nil, "client", "signup", "--server", url, "--username", "walker2", "--state", filepath.Join(dir, "z.state")).failedWith(t, "username_taken")
}

// TestClientDeleteYes: --yes deletes without a question, also without a
// terminal.
func TestClientDeleteYes(t *testing.T) {
	url := testIssuer(t)
	state := filepath.Join(t.TempDir(), "s.state")
	runCmd(t, nil, "client", "signup", "--server", url, "--username", "shortlived", "--state", state).ok(t, "signup")
	r := runCmd(t, nil, "client", "delete", "--state", state, "--yes").ok(t, "delete --yes")
	if r.json(t)["deleted"] != true || strings.Contains(r.stderr, "Type the username") {
		t.Fatalf("delete --yes: %q %q", r.stdout, r.stderr)
	}
	runCmd(t, nil, "client", "delete", "--state", state, "--yes").failedWith(t, "no_session")
}

func TestClientLifecycleUsage(t *testing.T) {
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"client", "link", "--server", "http://127.0.0.1:1", "--state", "x"}},
		{"", []string{"client", "link", "--server", "http://127.0.0.1:1", "--state", "x", "--code", "-"}},
		{"\n\n", []string{"client", "link", "--server", "http://127.0.0.1:1", "--state", "x", "--code", "-"}},
		{"", []string{"client", "link", "--code", "ABCD-EFGH-JKMN", "--state", "x"}},
		{"", []string{"client", "recover", "--server", "http://127.0.0.1:1", "--state", "x", "--code", "C"}},
		{"", []string{"client", "recover", "--server", "http://127.0.0.1:1", "--state", "x", "--username", "u"}},
		{"", []string{"client", "rename", "--state", "x"}},
		{"", []string{"client", "link-code"}},
		{"", []string{"client", "recovery-codes"}},
		{"", []string{"client", "delete"}},
	} {
		r := runCmdIn(t, nil, tc.stdin, tc.args...)
		if !errors.Is(r.err, errUsage) {
			t.Errorf("%q: %v, want a usage error", tc.args, r.err)
		}
	}
}

// TestClientCall: `hallpass client call` calls a URL of the issuer's origin
// with the device's token and a fresh proof; a URL of an origin not named
// in --origins is refused and receives nothing.
func TestClientCall(t *testing.T) {
	url := testIssuer(t)
	state := filepath.Join(t.TempDir(), "caller.state")
	if r := runCmd(t, nil, "client", "signup", "--server", url, "--username", "caller", "--state", state); r.err != nil {
		t.Fatalf("signup: %v\n%s", r.err, r.stderr)
	}
	r := runCmd(t, nil, "client", "call", "--state", state, url+"/v1/me")
	if r.err != nil || r.json(t)["username"] != "caller" || !strings.Contains(r.stderr, "200") {
		t.Fatalf("call /v1/me: %v %q %q", r.err, r.stdout, r.stderr)
	}
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer other.Close()
	r = runCmd(t, nil, "client", "call", "--state", state, other.URL+"/steal")
	if r.err == nil || !strings.Contains(r.stderr, "--origins") || hits.Load() != 0 {
		t.Fatalf("call to another origin: %v %q, %d requests reached it", r.err, r.stderr, hits.Load())
	}
	r = runCmd(t, nil, "client", "call", "--state", state, "--origins", other.URL, other.URL+"/allowed")
	if r.err != nil || hits.Load() != 1 {
		t.Fatalf("call to a listed origin: %v %q, %d requests", r.err, r.stderr, hits.Load())
	}
}

// TestClientUnsavedRefreshFails: a command whose automatic refresh could
// not save the new tokens, and whose last save on exit failed too, fails
// with state_not_saved instead of exiting 0: the state file still holds
// the spent refresh token, which the next run would present (reuse, once
// the grace window is over).
func TestClientUnsavedRefreshFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var expired, moved atomic.Bool
	url := testIssuerWrapped(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == issuer.PathMe && expired.CompareAndSwap(true, false):
				// As the issuer answers an expired token: the client refreshes.
				w.Header().Set("WWW-Authenticate", `DPoP error="token_expired", algs="ES256 EdDSA"`)
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"type":"urn:hallpass:problem:token_expired","title":"Token expired","status":401,"code":"token_expired"}`)
				return
			case r.URL.Path == issuer.PathToken && moved.CompareAndSwap(false, true):
				// The state directory goes away: no save can succeed.
				if err := os.Rename(dir, dir+".gone"); err != nil {
					t.Error(err)
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	state := filepath.Join(dir, "dana.state")
	runCmd(t, nil, "client", "signup", "--server", url, "--username", "dana", "--state", state).ok(t, "signup")
	expired.Store(true)
	r := runCmd(t, nil, "client", "me", "--state", state)
	if !moved.Load() {
		t.Fatal("the client did not refresh")
	}
	if r.err == nil || !strings.Contains(r.stderr, ": state_not_saved: ") {
		t.Fatalf("me with unsaved tokens: err %v, stderr %q", r.err, r.stderr)
	}
}

// TestClientConcurrentRunsKeepSession: two client commands on one state
// file at once. Run A loaded refresh token R0 and its refresh is on the
// wire (held here) while run B refreshes twice (R0 to R1, R1 to R2) and
// saves; A's R0 then reaches the issuer two steps behind: reuse, and the
// device is signed out. Runs on one state file must take turns: B waits
// for A, then starts from the token A saved.
func TestClientConcurrentRunsKeepSession(t *testing.T) {
	var armed, held atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	url := testIssuerWrapped(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == issuer.PathToken && armed.Load() && held.CompareAndSwap(false, true) {
				close(reached)
				<-release
			}
			h.ServeHTTP(w, r)
		})
	})
	state := filepath.Join(t.TempDir(), "erin.state")
	runCmd(t, nil, "client", "signup", "--server", url, "--username", "erin", "--state", state).ok(t, "signup")
	armed.Store(true)
	a := make(chan cmdResult, 1)
	go func() { a <- runCmd(t, nil, "client", "refresh", "--state", state) }()
	<-reached // A holds R0 and its refresh is on the wire
	b := make(chan []cmdResult, 1)
	go func() {
		b <- []cmdResult{runCmd(t, nil, "client", "refresh", "--state", state), runCmd(t, nil, "client", "refresh", "--state", state)}
	}()
	var bs []cmdResult
	select {
	case bs = <-b: // B did not wait for A
	case <-time.After(2 * time.Second): // B waits for A, as it should
	}
	close(release)
	(<-a).ok(t, "run A")
	if bs == nil {
		bs = <-b
	}
	for _, r := range bs {
		r.ok(t, "run B")
	}
	runCmd(t, nil, "client", "me", "--state", state).ok(t, "me after both runs")
}

// TestClientConcurrentSignups: two signups on one new state file at once
// both found it empty, and the second save replaced the first session, an
// account left with a live session nobody holds. The second now waits and
// finds the first's session.
func TestClientConcurrentSignups(t *testing.T) {
	var held atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	url := testIssuerWrapped(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == issuer.PathAccounts && held.CompareAndSwap(false, true) {
				close(reached)
				<-release
			}
			h.ServeHTTP(w, r)
		})
	})
	state := filepath.Join(t.TempDir(), "fay.state")
	pw := map[string]string{clientPassphraseEnv: "correct horse"}
	a := make(chan cmdResult, 1)
	go func() { a <- runCmd(t, pw, "client", "signup", "--server", url, "--username", "fay", "--state", state) }()
	<-reached
	b := make(chan cmdResult, 1)
	go func() { b <- runCmd(t, pw, "client", "signup", "--server", url, "--username", "gus", "--state", state) }()
	select {
	case <-time.After(2 * time.Second):
	case r := <-b:
		b <- r
	}
	close(release)
	(<-a).ok(t, "first signup")
	(<-b).failedWith(t, "already_signed_up")
	if got := runCmd(t, pw, "client", "me", "--state", state).ok(t, "me").json(t)["username"]; got != "fay" {
		t.Fatalf("the state file holds %v, want fay's session", got)
	}
}

// TestClientStateLocked: a command that cannot get the state file's lock
// in time fails with state_locked and leaves the file alone.
func TestClientStateLocked(t *testing.T) {
	url := testIssuer(t)
	state := filepath.Join(t.TempDir(), "hal.state")
	runCmd(t, nil, "client", "signup", "--server", url, "--username", "hal", "--state", state).ok(t, "signup")
	if mode(t, state+".lock") != 0o600 {
		t.Fatalf("lock file mode %v", mode(t, state+".lock"))
	}
	unlock, err := lockState(t.Context(), state, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func(w time.Duration) { stateLockWait = w }(stateLockWait)
	stateLockWait = 100 * time.Millisecond
	runCmd(t, nil, "client", "refresh", "--state", state).failedWith(t, "state_locked")
	unlock()
	runCmd(t, nil, "client", "refresh", "--state", state).ok(t, "refresh after unlock")
	// A command on a state file that does not exist makes no lock file.
	missing := filepath.Join(t.TempDir(), "none.state")
	runCmd(t, nil, "client", "me", "--state", missing).failedWith(t, "not_found")
	if _, err := os.Stat(missing + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock file for a missing state file: %v", err)
	}
}
