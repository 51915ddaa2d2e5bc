//go:build !windows

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newKeyFile writes a valid 32-byte key (base64url, as new-wrap-key makes
// it) with mode perm, chmod'ed so that the umask does not change it.
func newKeyFile(t *testing.T, dir, name string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Repeat("A", 43)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretFileFlagsRefuseOpenModes is the regression test of issue 11,
// finding 7. Reproduction: `hallpass keys new-wrap-key > wrap.key` (as the
// README did) made a 0644 file under the usual umask, and `serve
// --wrap-key-file wrap.key` accepted it silently; so did every other flag
// naming a secret file. Each such flag must now refuse a group- or
// world-accessible file before using it, name itself, and say the chmod.
func TestSecretFileFlagsRefuseOpenModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		flag string // the flag the message names; "" when the command has no such prefix
		args func(dir, secret string) []string
	}{
		{"serve --wrap-key-file", "--wrap-key-file", func(dir, s string) []string {
			return []string{"serve", "--listen", "127.0.0.1:0", "--data", dir, "--wrap-key-file", s}
		}},
		{"serve --passphrase-file", "--passphrase-file", func(dir, s string) []string {
			return []string{"serve", "--listen", "127.0.0.1:0", "--data", dir, "--passphrase-file", s}
		}},
		{"serve --dev --wrap-key-file", "--wrap-key-file", func(dir, s string) []string {
			return []string{"serve", "--listen", "127.0.0.1:0", "--dev", "--data", dir, "--wrap-key-file", s}
		}},
		{"serve --key-ring redis --wrap-key-file", "--wrap-key-file", func(dir, s string) []string {
			// Refused before the store is dialled (nothing listens there).
			return []string{"serve", "--listen", "127.0.0.1:0", "--key-ring", "redis", "--store", "redis://127.0.0.1:1/0", "--wrap-key-file", s}
		}},
		{"serve --dpop-nonce-key-file", "--dpop-nonce-key-file", func(dir, s string) []string {
			return []string{"serve", "--listen", "127.0.0.1:0", "--dev", "--data", dir, "--dpop-nonce", "--dpop-nonce-key-file", s}
		}},
		{"gateway --dpop-nonce-key-file", "--dpop-nonce-key-file", func(dir, s string) []string {
			// Refused before the key set is fetched (nothing listens there).
			return []string{"gateway", "--listen", "127.0.0.1:0", "--keys-url", "https://127.0.0.1:1" + wellKnownKeys, "--dpop-nonce", "--dpop-nonce-key-file", s}
		}},
		{"serve --rate-limit-key-file", "--rate-limit-key-file", func(dir, s string) []string {
			return []string{"serve", "--listen", "127.0.0.1:0", "--dev", "--data", dir, "--rate-limit-key-file", s}
		}},
		{"keys init --wrap-key-file", "--wrap-key-file", func(dir, s string) []string {
			return []string{"keys", "init", "--dir", filepath.Join(dir, "keys"), "--wrap-key-file", s}
		}},
		{"keys init --passphrase-file", "--passphrase-file", func(dir, s string) []string {
			return []string{"keys", "init", "--dir", filepath.Join(dir, "keys"), "--passphrase-file", s}
		}},
		{"keys rotate --wrap-key-file", "--wrap-key-file", func(dir, s string) []string {
			return []string{"keys", "rotate", "--dir", filepath.Join(dir, "keys"), "--wrap-key-file", s}
		}},
		{"keys rotate-refresh --store --wrap-key-file", "--wrap-key-file", func(dir, s string) []string {
			return []string{"keys", "rotate-refresh", "--store", "redis://127.0.0.1:1/0", "--wrap-key-file", s}
		}},
		{"keys rotate-pepper --dir --passphrase-file", "--passphrase-file", func(dir, s string) []string {
			return []string{"keys", "rotate-pepper", "--dir", filepath.Join(dir, "keys"), "--passphrase-file", s}
		}},
		{"token mint --wrap-key-file", "--wrap-key-file", func(dir, s string) []string {
			return []string{"token", "mint", "--dir", filepath.Join(dir, "keys"), "--wrap-key-file", s,
				"--iss", "https://auth.example.com", "--aud", "api", "--sub", "acc_x"}
		}},
		{"client --passphrase-file", "", func(dir, s string) []string {
			return []string{"client", "me", "--state", filepath.Join(dir, "device.state"), "--passphrase-file", s}
		}},
	}
	for _, tt := range tests {
		for _, perm := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660, 0o700 | 0o070} {
			t.Run(tt.name+"/"+perm.String(), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				secret := newKeyFile(t, dir, "secret.key", perm)
				var stderr bytes.Buffer
				e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
				// A command that wrongly accepts the file and serves stops at
				// the deadline (and fails the test).
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				err := run(ctx, tt.args(dir, secret), e)
				if !errors.Is(err, errSecretFileMode) {
					t.Fatalf("err = %v, want the secret-file mode refusal (stderr %q)", err, stderr.String())
				}
				msg := err.Error()
				if !strings.Contains(msg, "chmod 600 "+secret) {
					t.Errorf("message does not say the chmod: %q", msg)
				}
				if tt.flag != "" && !strings.HasPrefix(msg, tt.flag+": ") {
					t.Errorf("message does not name %s: %q", tt.flag, msg)
				}
				if strings.Contains(msg+stderr.String(), strings.Repeat("A", 43)) {
					t.Error("the secret was echoed")
				}
			})
		}
	}
}

// TestReadSecretModes: owner-only modes are read, any group or other bit
// is refused, and so is a file that is not regular.
func TestReadSecretModes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		perm os.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o700, true},
		{0o644, false}, {0o640, false}, {0o604, false}, {0o602, false}, {0o610, false}, {0o601, false},
	}
	for _, tt := range tests {
		t.Run(tt.perm.String(), func(t *testing.T) {
			p := newKeyFile(t, dir, "k"+tt.perm.String(), tt.perm)
			_, err := loadWrapKey(p)
			if tt.ok != (err == nil) {
				t.Fatalf("mode %v: err = %v", tt.perm, err)
			}
			if !tt.ok && !errors.Is(err, errSecretFileMode) {
				t.Fatalf("mode %v: err = %v, want errSecretFileMode", tt.perm, err)
			}
		})
	}
	// A symbolic link is judged by its target.
	target := newKeyFile(t, dir, "target", 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := loadWrapKey(link); !errors.Is(err, errSecretFileMode) {
		t.Fatalf("link to a 0644 file: %v", err)
	}
	if _, err := readSecretFile(dir); err == nil {
		t.Fatal("a directory was read as a secret file")
	}
	// A path that needs quoting gets a chmod that pastes.
	odd := newKeyFile(t, dir, "it's a key", 0o644)
	if _, err := loadWrapKey(odd); err == nil || !strings.Contains(err.Error(), `chmod 600 '`+dir+`/it'\''s a key'`) {
		t.Fatalf("quoted chmod: %v", err)
	}
}

// TestNewWrapKeyOut: --out creates a 0600 file that the secret-file flags
// accept, whatever the umask, and never overwrites.
func TestNewWrapKeyOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "wrap.key")
	r := runCmd(t, nil, "keys", "new-wrap-key", "--out", out)
	if r.err != nil {
		t.Fatalf("new-wrap-key --out: %v %s", r.err, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("the key was printed although --out was given: %q", r.stdout)
	}
	if m := mode(t, out); m != 0o600 { // the file builds on Unix only
		t.Fatalf("mode %v, want 0600", m)
	}
	w, err := loadWrapKey(out)
	if err != nil {
		t.Fatalf("the new file does not load: %v", err)
	}
	before, _ := os.ReadFile(out)
	r = runCmd(t, nil, "keys", "new-wrap-key", "--out", out)
	if r.err == nil || !strings.Contains(r.err.Error(), "refusing to overwrite") {
		t.Fatalf("overwrite: %v", r.err)
	}
	after, _ := os.ReadFile(out)
	if !bytes.Equal(before, after) {
		t.Fatal("the existing key was changed")
	}
	if w2, err := loadWrapKey(out); err != nil || !w2.Equal(w) {
		t.Fatal("the existing key no longer loads as before")
	}
	// A dangling symbolic link is not followed to create its target.
	link, target := filepath.Join(dir, "link.key"), filepath.Join(dir, "elsewhere.key")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, nil, "keys", "new-wrap-key", "--out", link); r.err == nil {
		t.Fatal("wrote through a symbolic link")
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link's target was created: %v", err)
	}
	// Without --out the key is printed, as before.
	r = runCmd(t, nil, "keys", "new-wrap-key")
	if r.err != nil || len(strings.TrimSpace(r.stdout)) != 43 {
		t.Fatalf("print: %v %q", r.err, r.stdout)
	}
	if r := runCmd(t, nil, "keys", "new-wrap-key", "extra"); !errors.Is(r.err, errUsage) {
		t.Fatalf("extra argument: %v", r.err)
	}
}
