package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hallpass/hallpass/issuer"
)

// Admin CLI environment variables.
const (
	adminKeyEnv = "HALLPASS_ADMIN_KEY"
	adminURLEnv = "HALLPASS_ADMIN_URL"
)

func adminKeyGroup() group {
	return group{
		name:    "admin-key",
		summary: "make admin keys for the admin API",
		cmds:    []command{{adminKeyNewDoc, adminKeyNew}},
	}
}

var adminKeyNewDoc = cmdDoc{
	name:    "admin-key new",
	args:    "--keys-file FILE [--id NAME]",
	summary: "make an admin key; its digest goes to the admin keys file",
	detail: `Makes a random 256-bit admin key, appends its SHA-256 digest line
("sha256:<hex> <id> <created>") to FILE (created with mode 0600 if missing)
and prints the key itself, once, alone on stdout. The server reads FILE
(--admin-keys-file); remove a line to withdraw that key.`,
	examples: []string{
		"hallpass admin-key new --keys-file admin-keys --id alice > alice.key",
		"hallpass serve --dev --admin-keys-file admin-keys",
	},
}

func adminKeyNew(_ context.Context, args []string, e *env) error {
	fs := newFlagSet(adminKeyNewDoc, e)
	file := fs.String("keys-file", e.getenv("HALLPASS_ADMIN_KEYS_FILE"), "admin keys file to append to [HALLPASS_ADMIN_KEYS_FILE]")
	id := fs.String("id", "", "name of the key in audit records: letters, digits, . _ - (default key-<digest prefix>)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: --keys-file is required", errUsage)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: admin-key new takes no arguments", errUsage)
	}
	key, line, err := issuer.NewAdminKey(nil, *id, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := appendKeyLine(*file, line); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "hallpass: added admin key %s to %s; the key is printed once, on stdout\n", strings.Fields(line)[1], *file)
	_, err = fmt.Fprintln(e.stdout, key)
	return err
}

// appendKeyLine appends line to path (0600, created if missing), refusing
// a file others may read or write.
func appendKeyLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("admin keys file: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		err = fmt.Errorf("admin keys file %s is accessible by other users (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	if err == nil && fi.Size() > 0 {
		// Start on a new line if the file does not end with one.
		b := make([]byte, 1)
		if rf, rerr := os.Open(path); rerr == nil {
			if _, rerr := rf.ReadAt(b, fi.Size()-1); rerr == nil && b[0] != '\n' {
				line = "\n" + line
			}
			rf.Close()
		}
	}
	if err == nil {
		_, err = f.WriteString(line + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func adminGroup() group {
	g := group{
		name:    "admin",
		summary: "call the admin API: revoke, ban, revoke-device, rotate-keys, ...",
		detail: `Calls the admin API of hallpass serve (--admin-listen). The admin key comes
from $HALLPASS_ADMIN_KEY (never a flag: it would show in ps); the URL from
--admin-url or $HALLPASS_ADMIN_URL (default http://127.0.0.1:9090). Plain
http is only allowed to a loopback address. Each command prints the JSON
answer on stdout; an error is one line on stderr with the server's code.`,
	}
	for _, ac := range adminCmds() {
		g.cmds = append(g.cmds, command{ac.doc, func(ctx context.Context, args []string, e *env) error {
			return runAdminCmd(ctx, ac, args, e)
		}})
	}
	return g
}

// adminCmd is one admin API call: its flags, and the request they make.
type adminCmd struct {
	doc   cmdDoc
	flags func(fs *flag.FlagSet) adminRequest
}

// adminRequest checks the parsed flags and returns the call to make.
type adminRequest func() (method, path string, body any, err error)

// adminExample prefixes an admin command line with the key it needs.
func adminExample(cmd string) string {
	return "HALLPASS_ADMIN_KEY=$(cat alice.key) hallpass admin " + cmd
}

// idCall is an admin call on the one id given by --flagName.
func idCall(name, args, summary, flagName, usage, method string, path func(id string) string, examples ...string) adminCmd {
	doc := cmdDoc{name: "admin " + name, args: args, summary: summary}
	for _, ex := range examples {
		doc.examples = append(doc.examples, adminExample(ex))
	}
	return adminCmd{doc, func(fs *flag.FlagSet) adminRequest {
		id := fs.String(flagName, "", usage)
		return func() (string, string, any, error) {
			if *id == "" {
				return "", "", nil, fmt.Errorf("%w: --%s is required", errUsage, flagName)
			}
			if *id == "." || *id == ".." {
				// A dot segment would move the call to another path
				// (accounts/../ban is /v1/admin/ban).
				return "", "", nil, fmt.Errorf("%w: --%s %q is not an id", errUsage, flagName, *id)
			}
			return method, path(url.PathEscape(*id)), nil, nil
		}
	}}
}

// fixedCall is an admin call that takes no flag of its own.
func fixedCall(name, summary, method, path string) adminCmd {
	doc := cmdDoc{name: "admin " + name, summary: summary, examples: []string{adminExample(name)}}
	return adminCmd{doc, func(*flag.FlagSet) adminRequest {
		return func() (string, string, any, error) { return method, path, nil, nil }
	}}
}

func adminCmds() []adminCmd {
	const accounts = "/v1/admin/accounts/"
	return []adminCmd{
		adminRevokeCmd(),
		fixedCall("revocations", "list the live revocation entries", http.MethodGet, "/v1/admin/revocations"),
		idCall("account", "--account ID", "show an account", "account", "account id (acc_...)", http.MethodGet,
			func(id string) string { return accounts + id }, "account --account acc_..."),
		idCall("account-by-username", "--username NAME", "find an account by username (mapped like at signup: ALICE finds alice)", "username", "username as typed",
			http.MethodGet, func(id string) string { return accounts + "by-username/" + id }, "account-by-username --username Alice"),
		idCall("devices", "--account ID", "list an account's devices", "account", "account id (acc_...)", http.MethodGet,
			func(id string) string { return accounts + id + "/devices" }, "devices --account acc_..."),
		idCall("revoke-device", "--device ID", "sign a device out: its session ends, its tokens are refused everywhere", "device", "device id (dev_...)",
			http.MethodDelete, func(id string) string { return "/v1/admin/devices/" + id }, "revoke-device --device dev_..."),
		idCall("ban", "--account ID", "ban an account: no refresh, no new device, its tokens refused", "account", "account id (acc_...)", http.MethodPost,
			func(id string) string { return accounts + id + "/ban" }, "ban --account acc_..."),
		idCall("unban", "--account ID", "lift a ban (tokens issued before it stay refused)", "account", "account id (acc_...)", http.MethodPost,
			func(id string) string { return accounts + id + "/unban" }, "unban --account acc_..."),
		fixedCall("rotate-keys", "rotate the signing keys through the key ring's store", http.MethodPost, "/v1/admin/keys/rotate"),
		idCall("revoke-key", "--kid k4.pid.ID", "withdraw a signing key at once (published as revoked)", "kid", "key id (k4.pid...)", http.MethodPost,
			func(id string) string { return "/v1/admin/keys/" + id + "/revoke" }, "revoke-key --kid k4.pid..."),
	}
}

func adminRevokeCmd() adminCmd {
	doc := cmdDoc{
		name:    "admin revoke",
		args:    "--kind token|device|account|all|key [--id ID] [--reason TEXT]",
		summary: "add a revocation entry: one token, a device, an account, everything, or a key",
		examples: []string{
			adminExample(`revoke --kind token --id <jti> --reason "leaked in a log"`),
			adminExample(`revoke --kind all --reason "key compromise"`),
		},
	}
	return adminCmd{doc, func(fs *flag.FlagSet) adminRequest {
		kind := fs.String("kind", "", "token, device, account, all or key")
		id := fs.String("id", "", "jti, dev_..., acc_... or k4.pid... (none for all)")
		reason := fs.String("reason", "", "operator's note, kept with the entry")
		return func() (string, string, any, error) {
			if *kind == "" {
				return "", "", nil, fmt.Errorf("%w: --kind is required", errUsage)
			}
			body := map[string]string{"kind": *kind, "id": *id}
			if *reason != "" {
				body["reason"] = *reason
			}
			return http.MethodPost, "/v1/admin/revocations", body, nil
		}
	}}
}

// runAdminCmd parses the flags of ac, then calls the admin API with the
// key from $HALLPASS_ADMIN_KEY.
func runAdminCmd(ctx context.Context, ac adminCmd, args []string, e *env) error {
	fs := newFlagSet(ac.doc, e)
	adminURL := fs.String("admin-url", e.getenv(adminURLEnv), "admin API URL [HALLPASS_ADMIN_URL] (default http://127.0.0.1:9090)")
	req := ac.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: %s takes no arguments", errUsage, ac.doc.name)
	}
	method, path, body, err := req()
	if err != nil {
		return err
	}
	key := e.getenv(adminKeyEnv)
	if key == "" {
		return fmt.Errorf("%w: set %s to an admin key (hallpass admin-key new)", errUsage, adminKeyEnv)
	}
	base, err := adminBase(*adminURL)
	if err != nil {
		return err
	}
	out, err := adminCall(ctx, base+path, method, key, body)
	if err != nil {
		fmt.Fprintln(e.stderr, "hallpass "+ac.doc.name+":", err)
		return exitError{code: 1, silent: true, err: err}
	}
	if len(out) == 0 {
		_, err = fmt.Fprintln(e.stdout, `{"ok": true}`)
		return err
	}
	var v any
	if json.Unmarshal(out, &v) != nil {
		return errors.New("the admin API answered something that is not JSON")
	}
	return writeJSON(e, v)
}

// adminBase checks the admin URL: http only to loopback, so that the key
// never crosses a network in clear.
func adminBase(s string) (string, error) {
	if s == "" {
		s = "http://127.0.0.1:9090"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: --admin-url must be an http(s) URL without user info or query", errUsage)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", fmt.Errorf("%w: --admin-url: plain http is only allowed to a loopback address; use https", errUsage)
		}
	default:
		return "", fmt.Errorf("%w: --admin-url must be http(s)", errUsage)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// errNotLoopback: a plain http admin call would have left the machine.
var errNotLoopback = errors.New("plain http admin call to a non-loopback address refused")

// adminHTTPClient is the client of the admin calls: it never follows a
// redirect (the key would go along) and, for plain http, connects only to
// a loopback address, checked on the address actually dialled: adminBase
// admits the name localhost, which the resolver (/etc/hosts, else DNS)
// could map elsewhere, and a proxy would be another host too (none is
// used).
func adminHTTPClient(scheme string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if scheme != "https" {
		tr.Proxy = nil
		d := &net.Dialer{Timeout: 30 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				return errNotLoopback
			}
			return nil
		}}
		tr.DialContext = d.DialContext
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // never resend the key elsewhere
	}}
}

// adminProblem is an error answer of the admin API.
type adminProblem struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Title     string `json:"title"`
	RequestID string `json:"request_id"`
}

func (p *adminProblem) Error() string {
	s := fmt.Sprintf("%s: %s (HTTP %d)", p.Code, p.Title, p.Status)
	if p.RequestID != "" {
		s += " request_id=" + p.RequestID
	}
	return s
}

func adminCall(ctx context.Context, u, method, key string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := adminHTTPClient(req.URL.Scheme).Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", errors.Unwrap(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		p := &adminProblem{Status: res.StatusCode}
		if json.Unmarshal(b, p) != nil || p.Code == "" || !printableShort(p.Code) || !printableShort(p.Title) {
			p.Code, p.Title = "http_error", http.StatusText(res.StatusCode)
		}
		p.Status = res.StatusCode
		return nil, p
	}
	return b, nil
}

func printableShort(s string) bool {
	if len(s) > 200 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
