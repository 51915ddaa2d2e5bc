package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys/filestore"
)

// unsafeRefreshKid is the kid of a refresh token's footer (read without
// opening the token: for the test's eyes only).
func unsafeRefreshKid(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	raw, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatalf("refresh token footer: %v", err)
	}
	var f struct{ Kid string }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Kid
}

// secretIDs are the ids in the first column after the status of the
// table `keys rotate-refresh` and `keys rotate-pepper` print.
func secretIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "k4.lid.") {
			t.Fatalf("unexpected line %q in\n%s", line, out)
		}
		ids = append(ids, f[1])
	}
	return ids
}

// newWrapKeyFile writes a new wrap key (hallpass keys new-wrap-key) to
// dir/wrap.key and returns its path.
func newWrapKeyFile(t *testing.T, dir string) string {
	t.Helper()
	wrap := filepath.Join(dir, "wrap.key")
	r := runCmd(t, nil, "keys", "new-wrap-key")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := os.WriteFile(wrap, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return wrap
}

// TestKeysRotateRefreshCommand: `hallpass keys rotate-refresh` adds a key
// and keeps the old one, --end-all-sessions leaves one new key, the flags
// that make no sense are refused, `keys rotate-pepper` keeps every older
// pepper, and neither prints a key or pepper.
func TestKeysRotateRefreshCommand(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "keys")
	wrap := newWrapKeyFile(t, dir)
	if r := runCmd(t, nil, "keys", "init", "--dir", ring, "--wrap-key-file", wrap); r.err != nil {
		t.Fatal(r.err, r.stderr)
	}
	var outputs strings.Builder
	var last []string
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
		check   func(ids []string)
	}{
		{name: "rotate", args: []string{"keys", "rotate-refresh"}, check: func(ids []string) {
			if len(ids) != 2 {
				t.Fatalf("after one rotation: %v", ids)
			}
		}},
		{name: "rotate with --keep", args: []string{"keys", "rotate-refresh", "--keep", "2160h"}, check: func(ids []string) {
			if len(ids) != 3 || ids[1] != last[0] || ids[2] != last[1] {
				t.Fatalf("after two rotations: %v (before %v)", ids, last)
			}
		}},
		{name: "keep 0", args: []string{"keys", "rotate-refresh", "--keep", "0s"}, wantErr: "--keep must be positive"},
		{name: "keep and end-all", args: []string{"keys", "rotate-refresh", "--keep", "1h", "--end-all-sessions"}, wantErr: "--keep does not apply"},
		{name: "both --dir and --store", args: []string{"keys", "rotate-pepper", "--store", "redis://127.0.0.1:1"}, wantErr: "exactly one of --dir and --store"},
		{name: "bad HALLPASS_REFRESH_TTL", env: map[string]string{"HALLPASS_REFRESH_TTL": "soon"}, args: []string{"keys", "rotate-refresh"}, wantErr: "HALLPASS_REFRESH_TTL"},
		{name: "end all sessions", args: []string{"keys", "rotate-refresh", "--end-all-sessions"}, check: func(ids []string) {
			if len(ids) != 1 || strings.Contains(strings.Join(last, " "), ids[0]) {
				t.Fatalf("after ending every session: %v (before %v)", ids, last)
			}
		}},
		{name: "rotate pepper", args: []string{"keys", "rotate-pepper"}, check: func(ids []string) {
			if len(ids) != 2 {
				t.Fatalf("peppers after a rotation: %v", ids)
			}
		}},
		{name: "rotate pepper again", args: []string{"keys", "rotate-pepper"}, check: func(ids []string) {
			if len(ids) != 3 || ids[1] != last[0] || ids[2] != last[1] {
				t.Fatalf("peppers after two rotations: %v (before %v)", ids, last)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.env, append(tc.args, "--dir", ring, "--wrap-key-file", wrap)...)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", r.err, tc.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("%v: %s", r.err, r.stderr)
			}
			outputs.WriteString(r.stdout + r.stderr)
			ids := secretIDs(t, r.stdout)
			tc.check(ids)
			last = ids
		})
	}
	if r := runCmd(t, nil, "keys", "rotate-pepper", "--dir", filepath.Join(dir, "none"), "--wrap-key-file", wrap); r.err == nil || !strings.Contains(r.err.Error(), "no key ring in") {
		t.Fatalf("a directory without a ring: %v", r.err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		t.Fatal("a command on a missing ring created its directory")
	}
	// Nothing secret was printed.
	w, err := loadWrapKey(wrap)
	if err != nil {
		t.Fatal(err)
	}
	prot, _ := filestore.WrapKey(w)
	st, _ := filestore.New(ring, prot, nil)
	locals, _ := st.LoadLocal(context.Background())
	peppers, _ := st.LoadPeppers(context.Background())
	var raws [][]byte
	for _, l := range locals {
		raws = append(raws, l.Key.UnsafeBytes())
	}
	for _, p := range peppers {
		raws = append(raws, p.Pepper.UnsafeLocalKey().UnsafeBytes())
	}
	if len(raws) != 4 {
		t.Fatalf("%d secrets in the ring, want 1 refresh key and 3 peppers", len(raws))
	}
	for _, raw := range raws {
		for _, enc := range []string{hex.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
			if strings.Contains(outputs.String(), enc) {
				t.Fatal("a command printed a secret")
			}
		}
	}
}

// refreshStatus presents the device's refresh token and returns the
// status and error code, keeping the new tokens on success.
func (d *httpDevice) refreshStatus(t *testing.T) (int, string) {
	t.Helper()
	st, m := d.do(t, "POST", "/v1/token", "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {d.rt}}.Encode(), "")
	if st == http.StatusOK {
		d.access, d.rt = m["access_token"].(string), m["refresh_token"].(string)
		return st, ""
	}
	code, _ := m["error"].(string)
	if code == "" {
		code, _ = m["code"].(string)
	}
	return st, code
}

// waitRefresh refreshes the device until cond holds for the new refresh
// token's kid (the server follows the ring within its poll interval).
func waitRefresh(t *testing.T, d *httpDevice, what string, cond func(kid string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, code := d.refreshStatus(t); st != http.StatusOK {
			t.Fatalf("%s: refresh answered %d %s", what, st, code)
		}
		if cond(unsafeRefreshKid(t, d.rt)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitEnded refreshes the device until the server refuses its refresh
// token with invalid_grant.
func waitEnded(t *testing.T, d *httpDevice, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, code := d.refreshStatus(t)
		if st == http.StatusBadRequest && code == "invalid_grant" {
			return
		}
		if st != http.StatusOK {
			t.Fatalf("%s: refresh answered %d %s, want 200 until the end, then invalid_grant", what, st, code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the session did not end", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeFollowsRefreshKeyFiles: `hallpass keys rotate-refresh` on the
// directory of a running `hallpass serve` (another process): without a
// restart the server seals new refresh tokens under the new key and still
// opens those sealed under the old one; after `--end-all-sessions` the
// device's refresh token is refused.
func TestServeFollowsRefreshKeyFiles(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	rs := startServe(t, nil, "--dev", "--data", data)
	ring := filepath.Join(data, "keys")
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "filesfollow")
	before := unsafeRefreshKid(t, d.rt)

	r := runCmd(t, nil, "keys", "rotate-refresh", "--dir", ring, "--insecure-plaintext")
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	ids := secretIDs(t, r.stdout)
	if len(ids) != 2 || ids[1] != before {
		t.Fatalf("keys after the rotation %v, want a new one before %s", ids, before)
	}
	// The refresh that first answers under the new key opened a token
	// sealed under the old one: the old key still opens.
	waitRefresh(t, d, "the server seals under the new key", func(kid string) bool { return kid == ids[0] })

	if r := runCmd(t, nil, "keys", "rotate-refresh", "--dir", ring, "--insecure-plaintext", "--end-all-sessions"); r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	waitEnded(t, d, "after --end-all-sessions")
	// A new device signs up and refreshes under the new key.
	d2 := newHTTPDevice(t, rs.url, nil)
	d2.signup(t, "filesfollow2")
	d2.refresh(t)
}

// TestServeAdminRefreshKeysRedis: two nodes on one Redis key ring; a
// refresh-key rotation through node A's admin API is followed by node B
// (new key for new tokens, old tokens still open), then end-all through
// A ends a session that refreshes on B, and both calls are audited.
func TestServeAdminRefreshKeysRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := t.TempDir()
	wrap := newWrapKeyFile(t, dir)
	keysFile := filepath.Join(dir, "admin-keys")
	key := strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile, "--id", "ops").stdout)
	args := []string{"--store", srv.URL(), "--key-ring", "redis", "--wrap-key-file", wrap, "--admin-keys-file", keysFile}
	a, adminA := startServeAdmin(t, nil, append(args, "--data", t.TempDir())...)
	b, _ := startServeAdmin(t, nil, append(args, "--data", t.TempDir())...)
	post := func(path string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, adminA+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %v", path, res.StatusCode, m)
		}
		return m
	}
	d := newHTTPDevice(t, a.url, nil)
	d.signup(t, "redisfollow")
	d.base = b.url
	before := unsafeRefreshKid(t, d.rt)

	m := post("/v1/admin/keys/rotate-refresh")
	ids, _ := m["refresh_keys"].([]any)
	if len(ids) != 2 || ids[1] != before {
		t.Fatalf("refresh_keys after the rotation: %v, want a new key before %s", m["refresh_keys"], before)
	}
	waitRefresh(t, d, "node B seals under the new key", func(kid string) bool { return kid == ids[0] })

	m = post("/v1/admin/sessions/end-all")
	if ids, _ := m["refresh_keys"].([]any); len(ids) != 1 {
		t.Fatalf("refresh_keys after end-all: %v", m["refresh_keys"])
	}
	if e, _ := m["entry"].(map[string]any); e == nil || e["kind"] != "all" {
		t.Fatalf("end-all wrote no all entry: %v", m)
	}
	waitEnded(t, d, "node B after end-all")
	// The same ring from the command line: a pepper rotation keeps the
	// older pepper; a refresh-key rotation reaches node B.
	r := runCmd(t, nil, "keys", "rotate-pepper", "--store", srv.URL(), "--wrap-key-file", wrap)
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	if ids := secretIDs(t, r.stdout); len(ids) != 2 {
		t.Fatalf("peppers in Redis after a rotation: %v", ids)
	}
	if r := runCmd(t, nil, "keys", "rotate-pepper", "--store", srv.URL(), "--passphrase-file", wrap); r.err == nil {
		t.Fatal("a passphrase accepted for a ring in Redis")
	}
	d2 := newHTTPDevice(t, b.url, nil)
	d2.signup(t, "redisfollow2")
	r = runCmd(t, nil, "keys", "rotate-refresh", "--store", srv.URL(), "--wrap-key-file", wrap)
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	newest := secretIDs(t, r.stdout)[0]
	waitRefresh(t, d2, "node B follows a rotation from the command line", func(kid string) bool { return kid == newest })
	for _, want := range []string{`"action":"POST /v1/admin/keys/rotate-refresh"`, `"action":"POST /v1/admin/sessions/end-all"`, `"sessions":"all"`} {
		if !strings.Contains(a.logs.String(), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}
