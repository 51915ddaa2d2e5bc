package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/keys"
)

func clientGroup() group {
	return group{
		name:    "client",
		summary: "try the whole flow from a shell, as a device",
		detail: `Each command prints JSON on stdout; an error is one line on stderr with the
server's code. The state file holds the device's private key and refresh
token, encrypted. The passphrase comes from --passphrase-file or
HALLPASS_CLIENT_PASSPHRASE; with neither, a random key is written to
FILE.key (mode 0600) beside the state file and used instead: that only
protects copies of the state file made without the key file.`,
		cmds: []command{
			{clientSignupDoc, clientSignup},
			{clientMeDoc, clientMe},
			{clientRefreshDoc, clientRefresh},
			{clientLogoutDoc, clientLogout},
			{clientDevicesDoc, clientDevices},
			{clientRevokeDeviceDoc, clientRevokeDevice},
		},
	}
}

var (
	clientSignupDoc = cmdDoc{
		name:    "client signup",
		args:    "--server URL --username NAME --state FILE [--device-name N] [--alg ES256|EdDSA]",
		summary: "make a device key, sign up and save the session in the state file",
		examples: []string{
			"hallpass client signup --server http://127.0.0.1:8080 --username alice --state alice.state",
			"HALLPASS_CLIENT_PASSPHRASE=... hallpass client signup --server https://auth.example.com --username alice --device-name laptop --state alice.state",
		},
	}
	clientMeDoc = cmdDoc{
		name:     "client me",
		args:     "--state FILE",
		summary:  "call GET /v1/me with the saved session (refreshing it when needed)",
		examples: []string{"hallpass client me --state alice.state"},
	}
	clientRefreshDoc = cmdDoc{
		name:     "client refresh",
		args:     "--state FILE",
		summary:  "rotate the refresh token now and save the new pair",
		examples: []string{"hallpass client refresh --state alice.state"},
	}
	clientLogoutDoc = cmdDoc{
		name:     "client logout",
		args:     "--state FILE",
		summary:  "end this device's session; the state file can sign up again",
		examples: []string{"hallpass client logout --state alice.state"},
	}
	clientDevicesDoc = cmdDoc{
		name:     "client devices",
		args:     "--state FILE",
		summary:  "list the account's devices",
		examples: []string{"hallpass client devices --state alice.state"},
	}
	clientRevokeDeviceDoc = cmdDoc{
		name:    "client revoke-device",
		args:    "--state FILE --device ID",
		summary: "sign out another device of the account",
		examples: []string{
			"hallpass client devices --state alice.state",
			"hallpass client revoke-device --state alice.state --device dev_<id from client devices>",
		},
	}
)

// clientArgon2 are the Argon2id costs for new passphrase-protected state
// files; tests lower them.
var clientArgon2 = keys.DefaultArgon2Params

// clientPassphraseEnv holds the passphrase itself (not a file name).
const clientPassphraseEnv = "HALLPASS_CLIENT_PASSPHRASE"

// stateFlags are the flags every client command has.
type stateFlags struct {
	state          string
	passphraseFile string
}

func (s *stateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.state, "state", "", "client state file (required)")
	fs.StringVar(&s.passphraseFile, "passphrase-file", "", "file holding the state passphrase (default: $"+clientPassphraseEnv+", else FILE.key)")
}

// protection picks how the state file is encrypted. With no passphrase it
// uses the key file FILE.key, creating it when create is set; created
// reports a new key file (to remove if signup fails).
func (s *stateFlags) protection(e *env, create bool) (p *client.FileProtection, keyFile string, created bool, err error) {
	if s.state == "" {
		return nil, "", false, fmt.Errorf("%w: --state is required", errUsage)
	}
	switch {
	case s.passphraseFile != "":
		pw, err := readSecretFile(s.passphraseFile)
		if err != nil {
			return nil, "", false, err
		}
		p, err = client.PassphraseProtectionWithParams(pw, clientArgon2)
		return p, "", false, err
	case e.getenv(clientPassphraseEnv) != "":
		p, err = client.PassphraseProtectionWithParams([]byte(e.getenv(clientPassphraseEnv)), clientArgon2)
		return p, "", false, err
	}
	keyFile = s.state + ".key"
	w, err := readKeyFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) && create {
		if w, err = createKeyFile(keyFile); err == nil {
			created = true
		}
	}
	if err != nil {
		return nil, "", false, err
	}
	p, err = client.WrapKeyProtection(w)
	return p, keyFile, created, err
}

// readKeyFile loads FILE.key, refusing one that others may read.
func readKeyFile(path string) (*keys.WrappingKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is accessible by other users (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	return loadWrapKey(path)
}

func createKeyFile(path string) (*keys.WrappingKey, error) {
	w, err := keys.GenerateWrappingKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	b := w.UnsafeBytes()
	defer clear(b)
	_, err = fmt.Fprintln(f, base64.RawURLEncoding.EncodeToString(b))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return w, nil
}

func clientOptions(e *env) []client.Option {
	// Warnings only (a retried refresh, a state file that could not be
	// written); the client never logs tokens.
	return []client.Option{client.WithLogger(slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))}
}

// openClient opens the client saved in the state file.
func openClient(ctx context.Context, sf *stateFlags, e *env) (*client.Client, error) {
	prot, _, _, err := sf.protection(e, false)
	if err != nil {
		return nil, err
	}
	store, err := client.NewFileStore(sf.state, prot)
	if err != nil {
		return nil, err
	}
	return client.Open(ctx, store, clientOptions(e)...)
}

// clientFail prints err as one line on stderr: the server's code when
// there is one, else a local code, and a short message.
func clientFail(cmd string, e *env, err error) error {
	if errors.Is(err, errUsage) {
		return err
	}
	code, msg := client.ErrorCode(err), err.Error()
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Title != "" {
		msg = fmt.Sprintf("%s (HTTP %d)", ae.Title, ae.Status)
		if ae.RequestID != "" {
			msg += " request_id=" + ae.RequestID
		}
	}
	if code == "" {
		switch {
		case errors.Is(err, client.ErrNoSession):
			code, msg = "no_session", "no session in the state file; run hallpass client signup"
		case errors.Is(err, client.ErrAlreadySignedUp):
			code = "already_signed_up"
		case errors.Is(err, client.ErrStateDecrypt):
			code = "state_decrypt"
		case errors.Is(err, client.ErrStateMismatch):
			code = "state_mismatch"
		case errors.Is(err, client.ErrPersist):
			code = "state_not_saved"
		case errors.Is(err, fs.ErrNotExist):
			code = "not_found"
		default:
			code = "error"
		}
	}
	fmt.Fprintf(e.stderr, "hallpass client %s: %s: %s\n", cmd, code, strings.ReplaceAll(msg, "\n", " "))
	return exitError{code: 1, silent: true, err: err}
}

func clientSignup(ctx context.Context, args []string, e *env) (err error) {
	fs := newFlagSet(clientSignupDoc, e)
	server := fs.String("server", "", "issuer URL, e.g. http://127.0.0.1:8080 (required)")
	username := fs.String("username", "", "username to sign up with (required)")
	deviceName := fs.String("device-name", "hallpass CLI", "label of this device")
	alg := fs.String("alg", string(client.ES256), "device key algorithm: ES256 or EdDSA")
	var sf stateFlags
	sf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" || *username == "" || sf.state == "" {
		return fmt.Errorf("%w: --server, --username and --state are required", errUsage)
	}
	a, err := parseAlg(*alg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = clientFail("signup", e, err)
		}
	}()
	store, keyFile, forget, err := signupState(ctx, &sf, e)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			forget()
		}
	}()
	key, err := client.GenerateDeviceKey(a)
	if err != nil {
		return err
	}
	c, err := client.New(*server, key, store, clientOptions(e)...)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.Signup(ctx, *username, *deviceName)
	if s == nil {
		return err
	}
	if keyFile != "" {
		fmt.Fprintf(e.stderr, "hallpass client: warning: no passphrase (--passphrase-file or %s): %s is encrypted with the random key in %s; anyone who can read both can act as this device\n",
			clientPassphraseEnv, sf.state, keyFile)
	}
	if werr := writeJSON(e, struct {
		*client.Session
		State   string `json:"state_file"`
		KeyFile string `json:"key_file,omitempty"`
	}{s, sf.state, keyFile}); werr != nil && err == nil {
		err = werr
	}
	return err
}

func parseAlg(s string) (client.Algorithm, error) {
	switch strings.ToUpper(s) {
	case "ES256":
		return client.ES256, nil
	case "EDDSA", "ED25519":
		return client.EdDSA, nil
	}
	return "", fmt.Errorf("%w: --alg must be ES256 or EdDSA", errUsage)
}

// signupState opens the state file for a new session. It never replaces a
// live session (its refresh token is not recoverable); a logged-out state
// file may be reused. forget removes a key file made for it, as long as
// nothing was saved under it.
func signupState(ctx context.Context, sf *stateFlags, e *env) (store *client.FileStore, keyFile string, forget func(), err error) {
	prot, keyFile, created, err := sf.protection(e, true)
	if err != nil {
		return nil, "", nil, err
	}
	forget = func() {
		if _, serr := os.Stat(sf.state); created && errors.Is(serr, os.ErrNotExist) {
			os.Remove(keyFile)
		}
	}
	_, serr := os.Stat(sf.state)
	existed := !errors.Is(serr, os.ErrNotExist)
	store, err = client.NewFileStore(sf.state, prot)
	if err == nil && existed {
		var st *client.State
		if st, err = store.Load(ctx); err == nil && st.HasSession() {
			err = fmt.Errorf("%w: %s holds a session; log out first or use another --state", client.ErrAlreadySignedUp, sf.state)
		}
	}
	if err != nil {
		forget()
		return nil, "", nil, err
	}
	return store, keyFile, forget, nil
}

// runClientCmd runs the client command doc names on the saved session: it parses
// the state flags and those that flags (when not nil) registers, runs the
// check flags returned (when not nil), then opens the client and hands it to
// do. Errors after the flags are parsed go through clientFail.
func runClientCmd(ctx context.Context, doc cmdDoc, args []string, e *env, flags func(*flag.FlagSet) (check func() error), do func(*client.Client) error) (err error) {
	fs := newFlagSet(doc, e)
	name := strings.TrimPrefix(doc.name, "client ")
	var sf stateFlags
	sf.register(fs)
	var check func() error
	if flags != nil {
		check = flags(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	defer func() {
		if err != nil {
			err = clientFail(name, e, err)
		}
	}()
	c, err := openClient(ctx, &sf, e)
	if err != nil {
		return err
	}
	defer c.Close()
	return do(c)
}

func clientMe(ctx context.Context, args []string, e *env) error {
	return runClientCmd(ctx, clientMeDoc, args, e, nil, func(c *client.Client) error {
		me, err := c.Me(ctx)
		if err != nil {
			return err
		}
		return writeJSON(e, me)
	})
}

func clientRefresh(ctx context.Context, args []string, e *env) error {
	return runClientCmd(ctx, clientRefreshDoc, args, e, nil, func(c *client.Client) error {
		if err := c.Refresh(ctx); err != nil {
			return err
		}
		s, err := c.Session(ctx)
		if err != nil {
			return err
		}
		return writeJSON(e, s)
	})
}

func clientLogout(ctx context.Context, args []string, e *env) error {
	return runClientCmd(ctx, clientLogoutDoc, args, e, nil, func(c *client.Client) error {
		s, err := c.Session(ctx)
		if err != nil {
			return err
		}
		if err := c.Logout(ctx); err != nil {
			return err
		}
		return writeJSON(e, struct {
			LoggedOut bool   `json:"logged_out"`
			AccountID string `json:"account_id"`
			DeviceID  string `json:"device_id"`
		}{true, s.AccountID, s.DeviceID})
	})
}

func clientDevices(ctx context.Context, args []string, e *env) error {
	return runClientCmd(ctx, clientDevicesDoc, args, e, nil, func(c *client.Client) error {
		devs, err := c.Devices(ctx)
		if err != nil {
			return err
		}
		return writeJSON(e, struct {
			Devices []client.Device `json:"devices"`
		}{devs})
	})
}

func clientRevokeDevice(ctx context.Context, args []string, e *env) error {
	var device string
	flags := func(fs *flag.FlagSet) func() error {
		fs.StringVar(&device, "device", "", "id of the device to sign out (dev_...; see `hallpass client devices`)")
		return func() error {
			if device == "" {
				return fmt.Errorf("%w: --device is required", errUsage)
			}
			return nil
		}
	}
	return runClientCmd(ctx, clientRevokeDeviceDoc, args, e, flags, func(c *client.Client) error {
		if err := c.RevokeDevice(ctx, device); err != nil {
			return err
		}
		return writeJSON(e, map[string]any{"revoked": device})
	})
}
