package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hallpass/hallpass/keys"
)

// allCommands are every command a user can run. Listed by hand, so that a
// command added without help (or dropped from the help) fails the test.
var allCommands = []string{
	"serve", "gateway", "health",
	"keys init", "keys rotate", "keys revoke", "keys rotate-refresh", "keys rotate-pepper", "keys list", "keys export-public", "keys new-wrap-key",
	"token mint", "token verify", "token inspect",
	"client signup", "client me", "client refresh", "client logout", "client devices", "client revoke-device",
	"client link-code", "client link", "client recovery-codes", "client recover", "client rename", "client delete", "client call",
	"admin-key new",
	"admin revoke", "admin revocations", "admin account", "admin account-by-username", "admin devices",
	"admin revoke-device", "admin ban", "admin unban", "admin rotate-keys", "admin revoke-key",
	"usernames report",
}

// TestHelpEveryCommand: `hallpass CMD -h` and `--help` succeed (exit status
// 0) for every command, and print on stdout a usage line, a description,
// and at least one example of that very command.
func TestHelpEveryCommand(t *testing.T) {
	var listed []string
	for _, d := range []cmdDoc{serveDoc, gatewayDoc, healthDoc} {
		listed = append(listed, d.name)
	}
	for _, g := range groups() {
		for _, c := range g.cmds {
			listed = append(listed, c.doc.name)
		}
	}
	if !slices.Equal(listed, allCommands) {
		t.Fatalf("commands in the help: %q\nwant %q", listed, allCommands)
	}
	for _, name := range allCommands {
		for _, flag := range []string{"-h", "--help"} {
			t.Run(name+" "+flag, func(t *testing.T) {
				r := runCmd(t, nil, append(strings.Fields(name), flag)...)
				if r.err != nil || exitStatus(&strings.Builder{}, r.err) != 0 {
					t.Fatalf("err = %v, want exit status 0 (stderr %q)", r.err, r.stderr)
				}
				lines := strings.Split(r.stdout, "\n")
				if !strings.HasPrefix(lines[0], "Usage: hallpass "+name) {
					t.Errorf("first line %q, want a usage line", lines[0])
				}
				if len(lines) < 3 || lines[2] == "" {
					t.Errorf("no description after the usage line:\n%s", r.stdout)
				}
				_, examples, ok := strings.Cut(r.stdout, "\nExamples:\n")
				if !ok || !strings.Contains(examples, "hallpass "+name) {
					t.Errorf("no example of %q:\n%s", name, r.stdout)
				}
			})
		}
	}
}

// TestHelpGroups: the command lists of hallpass and of each group succeed
// on stdout; without a command they are usage errors on stderr.
func TestHelpGroups(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"keys", "-h"}, {"token", "help"}, {"client", "--help"}, {"admin-key", "-h"}, {"admin", "-h"}} {
		r := runCmd(t, nil, args...)
		if r.err != nil || !strings.Contains(r.stdout, "Usage: hallpass ") || !strings.Contains(r.stdout, "Commands:") {
			t.Errorf("%q: %v\n%s", args, r.err, r.stdout)
		}
	}
	top := runCmd(t, nil, "help").stdout
	for _, name := range allCommands {
		if !strings.Contains(top, "  "+name+" ") {
			t.Errorf("hallpass help does not list %q", name)
		}
	}
	for _, args := range [][]string{nil, {"keys"}, {"token"}, {"nope"}, {"keys", "nope"}} {
		r := runCmd(t, nil, args...)
		if !errors.Is(r.err, errUsage) || r.stdout != "" || !strings.Contains(r.stderr, "Usage: hallpass") {
			t.Errorf("%q: err %v, stdout %q, stderr %q", args, r.err, r.stdout, r.stderr)
		}
	}
}

// TestBadFlagNamed: an unknown or malformed flag is one usage error that
// names it and says where the help is.
func TestBadFlagNamed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "new-wrap-key", "--bogus"}, "-bogus"},
		{[]string{"keys", "rotate", "--prune-after", "soon"}, "-prune-after"},
		{[]string{"serve", "--access-ttl", "ten"}, "-access-ttl"},
	} {
		r := runCmd(t, nil, tc.args...)
		if !errors.Is(r.err, errUsage) || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error naming %s", tc.args, r.err, tc.want)
		}
		if !strings.Contains(r.err.Error(), "-h\" for help") {
			t.Errorf("%q: %v, want a pointer to -h", tc.args, r.err)
		}
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		code  int
		print bool
	}{
		{"success", nil, 0, false},
		{"usage", fmt.Errorf("%w: --dir is required", errUsage), 1, true},
		{"failure", errors.New("boom"), 1, true},
		{"already printed", exitError{code: 1, silent: true, err: errors.New("x")}, 1, false},
		{"own code", exitError{code: 3, err: errors.New("x")}, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if got := exitStatus(&b, tc.err); got != tc.code {
				t.Errorf("exit status %d, want %d", got, tc.code)
			}
			if printed := b.Len() > 0; printed != tc.print {
				t.Errorf("printed %q", b.String())
			}
		})
	}
}

// TestServeConfigErrorsNameFlags: a value the issuer refuses is reported
// with the flag the operator typed, never the Go field behind it.
func TestServeConfigErrorsNameFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args      []string
		flag, not string
	}{
		{[]string{"--access-ttl", "2h"}, "--access-ttl", "AccessTTL"},
		{[]string{"--access-ttl", "10s"}, "--access-ttl", "AccessTTL"},
		{[]string{"--refresh-grace", "10m"}, "--refresh-grace", "RefreshGrace"},
		{[]string{"--refresh-idle", "100d"}, "", ""}, // not a Go duration: the flag package names it
		{[]string{"--refresh-ttl", "1h", "--refresh-idle", "2h"}, "--refresh-idle", "RefreshIdle"},
		{[]string{"--store-timeout", "2m"}, "--store-timeout", "StoreTimeout"},
		{[]string{"--public-url", "ftp://auth.example.com"}, "--public-url", "PublicURL"},
		{[]string{"--revocation-max-staleness", "-1s"}, "--revocation-max-staleness", "MaxStaleness"},
		{[]string{"--link-code-ttl", "2h"}, "--link-code-ttl", "LinkCodeTTL"},
		{[]string{"--cors-origins", "*"}, "--cors-origins", "CORSOrigins"},
		{[]string{"--username-hold", "10000h"}, "--username-hold", "UsernameHold"},
		{[]string{"--code-limit-per-ip", "lots"}, "--code-limit-per-ip", "CodeRedeemPerIP"},
		{[]string{"--recover-limit-per-account", "0/h"}, "--recover-limit-per-account", "RecoverPerAccount"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			err := serveErr(t, nil, append([]string{"--dev", "--data", t.TempDir()}, tc.args...)...)
			if !errors.Is(err, errUsage) {
				t.Fatalf("%v, want a usage error", err)
			}
			if tc.flag == "" {
				return
			}
			if !strings.Contains(err.Error(), tc.flag) || strings.Contains(err.Error(), tc.not) || strings.Contains(err.Error(), "issuer:") {
				t.Fatalf("%q, want it to name %s and not %s", err, tc.flag, tc.not)
			}
		})
	}
}

// TestWrongSecretErrors: a wrong passphrase and a wrong wrapping key are
// different mistakes; each error names the flag to fix, and neither shows
// the secret.
func TestWrongSecretErrors(t *testing.T) {
	defer func(p keys.Argon2Params) { ringArgon2 = p }(ringArgon2)
	ringArgon2 = keys.Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 1}
	dir := t.TempDir()
	secret := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rightPW := secret("right.pw", "correct horse battery staple")
	wrongPW := secret("wrong.pw", "incorrect donkey battery")
	rightWK := secret("right.key", strings.Repeat("a", 43))
	wrongWK := secret("wrong.key", strings.Repeat("b", 43))
	pwRing, wkRing := filepath.Join(dir, "pw-ring"), filepath.Join(dir, "wk-ring")
	for _, args := range [][]string{
		{"keys", "init", "--dir", pwRing, "--passphrase-file", rightPW},
		{"keys", "init", "--dir", wkRing, "--wrap-key-file", rightWK},
	} {
		if r := runCmd(t, nil, args...); r.err != nil {
			t.Fatalf("%q: %v %s", args, r.err, r.stderr)
		}
	}
	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		wrong error
	}{
		{"wrong passphrase", []string{"keys", "rotate", "--dir", pwRing, "--passphrase-file", wrongPW},
			"--passphrase-file: the passphrase does not open the key ring in " + pwRing, keys.ErrUnwrap},
		{"wrong wrap key", []string{"keys", "rotate", "--dir", wkRing, "--wrap-key-file", wrongWK},
			"--wrap-key-file: the wrapping key does not open the key ring in " + wkRing, keys.ErrUnwrap},
		{"wrong passphrase, token mint", []string{"token", "mint", "--dir", pwRing, "--passphrase-file", wrongPW, "--iss", "https://i.example", "--aud", "a", "--sub", "acc_x"},
			"--passphrase-file: the passphrase does not open", keys.ErrUnwrap},
		{"passphrase for a wrap-key ring", []string{"keys", "rotate", "--dir", wkRing, "--passphrase-file", rightPW},
			"the key ring in " + wkRing + " is protected by a wrapping key: give --wrap-key-file", nil},
		{"wrap key for a passphrase ring", []string{"keys", "rotate", "--dir", pwRing, "--wrap-key-file", rightWK},
			"the key ring in " + pwRing + " is protected by a passphrase: give --passphrase-file", nil},
		{"no ring", []string{"keys", "list", "--dir", filepath.Join(dir, "none")},
			"no key ring in " + filepath.Join(dir, "none") + ": create one with `hallpass keys init", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, nil, tc.args...)
			if r.err == nil || !strings.HasPrefix(r.err.Error(), tc.want) {
				t.Fatalf("error %q, want it to start with %q", r.err, tc.want)
			}
			if tc.wrong != nil && !errors.Is(r.err, tc.wrong) {
				t.Errorf("%v is not %v", r.err, tc.wrong)
			}
			for _, s := range []string{"horse", "donkey", "aaaa", "bbbb", "cannot unwrap"} {
				if strings.Contains(r.err.Error(), s) {
					t.Errorf("error %q shows %q", r.err, s)
				}
			}
		})
	}
	// serve says the same, for the file ring.
	err := serveErr(t, nil, "--keys-dir", wkRing, "--data", t.TempDir(), "--wrap-key-file", wrongWK)
	if err == nil || !strings.HasPrefix(err.Error(), "--wrap-key-file: the wrapping key does not open the key ring in "+wkRing) {
		t.Fatalf("serve with the wrong wrap key: %v", err)
	}
	err = serveErr(t, nil, "--keys-dir", pwRing, "--data", t.TempDir(), "--passphrase-file", wrongPW)
	if err == nil || !strings.HasPrefix(err.Error(), "--passphrase-file: the passphrase does not open the key ring in "+pwRing) {
		t.Fatalf("serve with the wrong passphrase: %v", err)
	}
}
