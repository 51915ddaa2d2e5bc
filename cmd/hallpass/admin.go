package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/hallpass/hallpass/issuer"
)

// Admin CLI environment variables.
const (
	adminKeyEnv = "HALLPASS_ADMIN_KEY"
	adminURLEnv = "HALLPASS_ADMIN_URL"
)

const adminKeyUsage = `Usage: hallpass admin-key new --keys-file FILE [--id NAME]

Makes a random 256-bit admin key, appends its SHA-256 digest line
("sha256:<hex> <id> <created>") to FILE (created with mode 0600 if missing)
and prints the key itself, once, alone on stdout. The server reads FILE
(--admin-keys-file); remove a line to withdraw that key.
`

func runAdminKey(_ context.Context, args []string, e *env) error {
	if len(args) == 0 || args[0] != "new" {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(e.stdout, adminKeyUsage)
			return nil
		}
		fmt.Fprint(e.stderr, adminKeyUsage)
		return errUsage
	}
	fs := newFlagSet("admin-key new", e)
	file := fs.String("keys-file", e.getenv("HALLPASS_ADMIN_KEYS_FILE"), "admin keys file to append to [HALLPASS_ADMIN_KEYS_FILE]")
	id := fs.String("id", "", "name of the key in audit records: letters, digits, . _ - (default key-<digest prefix>)")
	if err := parseFlags(fs, args[1:]); err != nil {
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

const adminUsage = `Usage: hallpass admin <command> [flags]

Calls the admin API of hallpass serve (--admin-listen). The admin key comes
from $HALLPASS_ADMIN_KEY (never a flag: it would show in ps); the URL from
--admin-url or $HALLPASS_ADMIN_URL (default http://127.0.0.1:9090). Plain
http is only allowed to a loopback address. Each command prints the JSON
answer on stdout; an error is one line on stderr with the server's code.

  revoke --kind token|device|account|all|key [--id ID] [--reason TEXT]
  revocations
  account --account ID
  account-by-username --username NAME
  devices --account ID
  revoke-device --device ID
  ban --account ID
  unban --account ID
  rotate-keys
  revoke-key --kid k4.pid...
`

func runAdmin(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, adminUsage)
		return errUsage
	}
	cmd := args[0]
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(e.stdout, adminUsage)
		return nil
	}
	fs := newFlagSet("admin "+cmd, e)
	adminURL := fs.String("admin-url", e.getenv(adminURLEnv), "admin API URL [HALLPASS_ADMIN_URL] (default http://127.0.0.1:9090)")
	var kind, id, reason, acc, username, dev, kid string
	var method, path string
	var body any
	switch cmd {
	case "revoke":
		fs.StringVar(&kind, "kind", "", "token, device, account, all or key")
		fs.StringVar(&id, "id", "", "jti, dev_..., acc_... or k4.pid... (none for all)")
		fs.StringVar(&reason, "reason", "", "operator's note, kept with the entry")
	case "account", "devices", "ban", "unban":
		fs.StringVar(&acc, "account", "", "account id (acc_...)")
	case "account-by-username":
		fs.StringVar(&username, "username", "", "username as typed")
	case "revoke-device":
		fs.StringVar(&dev, "device", "", "device id (dev_...)")
	case "revoke-key":
		fs.StringVar(&kid, "kid", "", "key id (k4.pid...)")
	case "revocations", "rotate-keys":
	default:
		fmt.Fprint(e.stderr, adminUsage)
		return fmt.Errorf("%w: unknown admin command %q", errUsage, cmd)
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: admin %s takes no arguments", errUsage, cmd)
	}
	need := func(v, flag string) error {
		if v == "" {
			return fmt.Errorf("%w: --%s is required", errUsage, flag)
		}
		return nil
	}
	var err error
	esc := url.PathEscape
	switch cmd {
	case "revoke":
		if err = need(kind, "kind"); err == nil {
			method, path = http.MethodPost, "/v1/admin/revocations"
			m := map[string]string{"kind": kind, "id": id}
			if reason != "" {
				m["reason"] = reason
			}
			body = m
		}
	case "revocations":
		method, path = http.MethodGet, "/v1/admin/revocations"
	case "account":
		err = need(acc, "account")
		method, path = http.MethodGet, "/v1/admin/accounts/"+esc(acc)
	case "account-by-username":
		err = need(username, "username")
		method, path = http.MethodGet, "/v1/admin/accounts/by-username/"+esc(username)
	case "devices":
		err = need(acc, "account")
		method, path = http.MethodGet, "/v1/admin/accounts/"+esc(acc)+"/devices"
	case "ban", "unban":
		err = need(acc, "account")
		method, path = http.MethodPost, "/v1/admin/accounts/"+esc(acc)+"/"+cmd
	case "revoke-device":
		err = need(dev, "device")
		method, path = http.MethodDelete, "/v1/admin/devices/"+esc(dev)
	case "rotate-keys":
		method, path = http.MethodPost, "/v1/admin/keys/rotate"
	case "revoke-key":
		err = need(kid, "kid")
		method, path = http.MethodPost, "/v1/admin/keys/"+esc(kid)+"/revoke"
	}
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
		fmt.Fprintln(e.stderr, "hallpass admin "+cmd+":", err)
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
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // never resend the key elsewhere
	}}
	res, err := hc.Do(req)
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
