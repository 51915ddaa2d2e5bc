package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

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
protects copies of the state file made without the key file.

Commands on one state file take turns: each holds a lock on FILE.lock
(flock, mode 0600, left in place) from loading the state to its last save,
so none presents a refresh token another has rotated since (the server
takes that for reuse and signs the device out), and two signups never
share a file. A command waits up to a minute, then fails with state_locked.

An account outlives its devices: link-code on a signed-in device and link on
a new one add a device; recovery-codes makes codes to keep, and recover
brings the account back on a new device when no signed-in one is left.`,
		cmds: []command{
			{clientSignupDoc, clientSignup},
			{clientMeDoc, clientMe},
			{clientRefreshDoc, clientRefresh},
			{clientLogoutDoc, clientLogout},
			{clientDevicesDoc, clientDevices},
			{clientRevokeDeviceDoc, clientRevokeDevice},
			{clientLinkCodeDoc, clientLinkCode},
			{clientLinkDoc, clientLink},
			{clientRecoveryCodesDoc, clientRecoveryCodes},
			{clientRecoverDoc, clientRecover},
			{clientRenameDoc, clientRename},
			{clientDeleteDoc, clientDelete},
			{clientCallDoc, clientCall},
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
		name:    "client logout",
		args:    "--state FILE",
		summary: "end this device's session; the state file can sign up, link or recover again",
		detail: `The account lives on. To come back to it on this or another device, use a
link code from a device that is still signed in (link-code, then link) or a
recovery code (recover).`,
		examples: []string{"hallpass client logout --state alice.state"},
	}
	clientDevicesDoc = cmdDoc{
		name:     "client devices",
		args:     "--state FILE",
		summary:  "list the account's devices",
		examples: []string{"hallpass client devices --state alice.state"},
	}
	clientLinkCodeDoc = cmdDoc{
		name:    "client link-code",
		args:    "--state FILE [--text]",
		summary: "make a single-use code that joins a new device to this account",
		detail: `Prints {"code","expires_at"} (or, with --text, the code alone). Type the code
on the new device with "hallpass client link" before it expires (10 minutes
by default). Whoever redeems it first joins the account: show it to no one
else.`,
		examples: []string{
			"hallpass client link-code --state phone.state",
			"CODE=$(hallpass client link-code --state phone.state --text)",
		},
	}
	clientLinkDoc = cmdDoc{
		name:    "client link",
		args:    "--server URL --code CODE|- --state FILE [--device-name N] [--alg ES256|EdDSA]",
		summary: "join an account with a link code from one of its devices, as a new device",
		detail: `Makes a new device key, proves it to the server and saves the session in a
new state file (or one that holds no session), as signup does. Prints the
joined account. --code - reads the code from the first line of stdin. A
wrong, expired or used code is invalid_link_code.`,
		examples: []string{
			"hallpass client link --server http://127.0.0.1:8080 --code ABCD-EFGH-JKMN --device-name tablet --state tablet.state",
			"hallpass client link-code --state phone.state --text | hallpass client link --server http://127.0.0.1:8080 --code - --state tablet.state",
		},
	}
	clientRecoveryCodesDoc = cmdDoc{
		name:    "client recovery-codes",
		args:    "--state FILE [--text]",
		summary: "make 10 single-use recovery codes, shown once, replacing any earlier set",
		detail: `Prints {"codes":[...]} (or, with --text, one code per line) and a warning on
stderr. The server keeps only digests: this is the one time they are shown.
Keep them where you keep passwords, not beside the state file: with the
username, each one brings the account back on a new device once (see
"hallpass client recover"). "hallpass client me" tells how many are left.`,
		examples: []string{
			"hallpass client recovery-codes --state phone.state",
			"hallpass client recovery-codes --state phone.state --text > recovery-codes.txt",
		},
	}
	clientRecoverDoc = cmdDoc{
		name:    "client recover",
		args:    "--server URL --username NAME --code CODE|- --state FILE [--keep-other-devices] [--device-name N] [--alg ES256|EdDSA]",
		summary: "bring the account back on a new device with a recovery code",
		detail: `For a lost phone, or a device that was logged out or signed out. Makes a new
device key, proves it and saves the session in a new state file (or one that
holds no session); the account keeps its id and username, and the code is
used up. Every other device of the account is signed out, unless
--keep-other-devices. --code - reads the code from the first line of stdin,
so it stays out of the shell history. A wrong or used code and an unknown
username are the same invalid_recovery_code; repeated tries are
rate_limited.`,
		examples: []string{
			"hallpass client recover --server http://127.0.0.1:8080 --username alice --code - --state new-phone.state < code.txt",
			"hallpass client recover --server https://auth.example.com --username alice --code ABCDE-FGHJK-MNPQR-STVWX --keep-other-devices --state laptop.state",
		},
	}
	clientRenameDoc = cmdDoc{
		name:    "client rename",
		args:    "--state FILE --username NAME",
		summary: "change the account's username",
		detail: `Same rules as at signup (username_invalid, username_taken). The old name
stays taken for a while (30 days by default), so no one else can pose as
the account under it.`,
		examples: []string{"hallpass client rename --state alice.state --username alice_b"},
	}
	clientDeleteDoc = cmdDoc{
		name:    "client delete",
		args:    "--state FILE [--yes]",
		summary: "delete the account: every device signed out, its tokens refused, for good",
		detail: `Asks to type the username to confirm; --yes skips the question. Without a
terminal and without --yes it refuses. The username stays taken for a while
(30 days by default). The state file keeps the device key only.`,
		examples: []string{
			"hallpass client delete --state alice.state",
			"hallpass client delete --state alice.state --yes",
		},
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
func openClient(ctx context.Context, sf *stateFlags, e *env, extra ...client.Option) (*client.Client, error) {
	prot, _, _, err := sf.protection(e, false)
	if err != nil {
		return nil, err
	}
	store, err := client.NewFileStore(sf.state, prot)
	if err != nil {
		return nil, err
	}
	return client.Open(ctx, store, append(clientOptions(e), extra...)...)
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
			code, msg = "no_session", "no session in the state file; sign up, or come back to an account with hallpass client link or recover"
		case errors.Is(err, client.ErrAlreadySignedUp):
			code = "already_signed_up"
		case errors.Is(err, client.ErrStateDecrypt):
			code = "state_decrypt"
		case errors.Is(err, client.ErrStateMismatch):
			code = "state_mismatch"
		case errors.Is(err, client.ErrPersist):
			code = "state_not_saved"
		case errors.Is(err, errStateLocked):
			code = "state_locked"
		case errors.Is(err, errNotConfirmed):
			code = "not_confirmed"
		case errors.Is(err, fs.ErrNotExist):
			code = "not_found"
		default:
			code = "error"
		}
	}
	fmt.Fprintf(e.stderr, "hallpass client %s: %s: %s\n", cmd, code, strings.ReplaceAll(msg, "\n", " "))
	return exitError{code: 1, silent: true, err: err}
}

func clientSignup(ctx context.Context, args []string, e *env) error {
	var username string
	flags := func(fs *flag.FlagSet) func() error {
		fs.StringVar(&username, "username", "", "username to sign up with (required)")
		return func() error {
			if username == "" {
				return fmt.Errorf("%w: --username is required", errUsage)
			}
			return nil
		}
	}
	return runJoinCmd(ctx, clientSignupDoc, args, e, flags, func(c *client.Client, deviceName string) (*client.Session, error) {
		return c.Signup(ctx, username, deviceName)
	})
}

// runJoinCmd runs a command that starts a session on a new device key
// (signup, link, recover): it parses --server, --device-name, --alg, the
// state flags and those flags registers, opens a state file that holds no
// session, makes the key and hands the client to join, then prints the
// session. A key file made for a failed join is removed.
func runJoinCmd(ctx context.Context, doc cmdDoc, args []string, e *env, flags func(*flag.FlagSet) (check func() error),
	join func(c *client.Client, deviceName string) (*client.Session, error)) (err error) {
	name := strings.TrimPrefix(doc.name, "client ")
	jf, err := parseJoinFlags(doc, args, e, flags)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = clientFail(name, e, err)
		}
	}()
	return jf.joinSession(ctx, e, join)
}

// joinFlags are the parsed flags of a join command (signup, link, recover).
type joinFlags struct {
	server, deviceName string
	alg                client.Algorithm
	sf                 stateFlags
}

// parseJoinFlags parses a join command's flags and those flags registers, then runs their check.
func parseJoinFlags(doc cmdDoc, args []string, e *env, flags func(*flag.FlagSet) (check func() error)) (*joinFlags, error) {
	fs := newFlagSet(doc, e)
	var jf joinFlags
	fs.StringVar(&jf.server, "server", "", "issuer URL, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&jf.deviceName, "device-name", "hallpass CLI", "label of this device")
	alg := fs.String("alg", string(client.ES256), "device key algorithm: ES256 or EdDSA")
	jf.sf.register(fs)
	check := flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if jf.server == "" || jf.sf.state == "" {
		return nil, fmt.Errorf("%w: --server and --state are required", errUsage)
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	a, err := parseAlg(*alg)
	if err != nil {
		return nil, err
	}
	jf.alg = a
	return &jf, nil
}

// joinSession makes the device key, hands the client to join and prints the session; a failed join forgets its key file.
func (jf *joinFlags) joinSession(ctx context.Context, e *env, join func(c *client.Client, deviceName string) (*client.Session, error)) (err error) {
	unlock, err := lockState(ctx, jf.sf.state, true)
	if err != nil {
		return err
	}
	defer unlock()
	store, keyFile, forget, err := signupState(ctx, &jf.sf, e)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			forget()
		}
	}()
	key, err := client.GenerateDeviceKey(jf.alg)
	if err != nil {
		return err
	}
	c, err := client.New(jf.server, key, store, clientOptions(e)...)
	if err != nil {
		return err
	}
	defer closeClient(c, &err)
	s, err := join(c, jf.deviceName)
	if s == nil {
		return err
	}
	if werr := jf.printJoined(e, s, keyFile); werr != nil && err == nil {
		err = werr
	}
	return err
}

// printJoined warns about a state file without a passphrase and prints the new session.
func (jf *joinFlags) printJoined(e *env, s *client.Session, keyFile string) error {
	if keyFile != "" {
		fmt.Fprintf(e.stderr, "hallpass client: warning: no passphrase (--passphrase-file or %s): %s is encrypted with the random key in %s; anyone who can read both can act as this device\n",
			clientPassphraseEnv, jf.sf.state, keyFile)
	}
	return writeJSON(e, struct {
		*client.Session
		State   string `json:"state_file"`
		KeyFile string `json:"key_file,omitempty"`
	}{s, jf.sf.state, keyFile})
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
func runClientCmd(ctx context.Context, doc cmdDoc, args []string, e *env, flags func(*flag.FlagSet) (check func() error), do func(*client.Client) error) error {
	return runClientCmdWith(ctx, doc, args, e, flags, nil, do)
}

// runClientCmdWith is runClientCmd whose client gets the options opts
// returns after the flags are parsed.
func runClientCmdWith(ctx context.Context, doc cmdDoc, args []string, e *env, flags func(*flag.FlagSet) (check func() error), opts func() []client.Option, do func(*client.Client) error) (err error) {
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
	unlock, err := lockState(ctx, sf.state, false)
	if err != nil {
		return err
	}
	defer unlock() // after closeClient's last save
	var extra []client.Option
	if opts != nil {
		extra = opts()
	}
	c, err := openClient(ctx, &sf, e, extra...)
	if err != nil {
		return err
	}
	defer closeClient(c, &err)
	return do(c)
}

// closeClient closes c, and sets *err to Close's error when there was none
// yet: tokens that no save could write (ErrPersist) must not exit 0, since
// the state file still holds the spent refresh token.
func closeClient(c *client.Client, err *error) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
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
		fs.StringVar(&device, "device", "", "id of the device to sign out (dev_...; see hallpass client devices)")
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

func clientLinkCode(ctx context.Context, args []string, e *env) error {
	var text bool
	flags := func(fs *flag.FlagSet) func() error {
		fs.BoolVar(&text, "text", false, "print the code alone, for scripts")
		return nil
	}
	return runClientCmd(ctx, clientLinkCodeDoc, args, e, flags, func(c *client.Client) error {
		code, expires, err := c.CreateLinkCode(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "hallpass client: the link code works once, until %s; on the new device: hallpass client link --server %s --code CODE --state NEW.state\n",
			expires.UTC().Format(time.RFC3339), c.ServerURL())
		if text {
			_, err = fmt.Fprintln(e.stdout, code)
			return err
		}
		return writeJSON(e, struct {
			Code      string    `json:"code"`
			ExpiresAt time.Time `json:"expires_at"`
		}{code, expires.UTC()})
	})
}

func clientLink(ctx context.Context, args []string, e *env) error {
	var code string
	flags := func(fs *flag.FlagSet) func() error {
		fs.StringVar(&code, "code", "", "link code made by hallpass client link-code on a signed-in device, or - to read it from stdin (required)")
		return func() (err error) {
			code, err = readCode(e, code, "link code")
			return err
		}
	}
	return runJoinCmd(ctx, clientLinkDoc, args, e, flags, func(c *client.Client, deviceName string) (*client.Session, error) {
		return c.Link(ctx, code, deviceName)
	})
}

func clientRecoveryCodes(ctx context.Context, args []string, e *env) error {
	var text bool
	flags := func(fs *flag.FlagSet) func() error {
		fs.BoolVar(&text, "text", false, "print one code per line, for a file")
		return nil
	}
	return runClientCmd(ctx, clientRecoveryCodesDoc, args, e, flags, func(c *client.Client) error {
		codes, err := c.CreateRecoveryCodes(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "hallpass client: warning: these %d recovery codes are shown only now and replace any earlier ones. "+
			"Store them where you keep passwords, not beside the state file: with the username, each one brings the account back on a new device, once, "+
			"and signs the other devices out.\n", len(codes))
		if text {
			_, err = fmt.Fprintln(e.stdout, strings.Join(codes, "\n"))
			return err
		}
		return writeJSON(e, struct {
			Codes []string `json:"codes"`
		}{codes})
	})
}

func clientRecover(ctx context.Context, args []string, e *env) error {
	var username, code string
	var keep bool
	flags := func(fs *flag.FlagSet) func() error {
		fs.StringVar(&username, "username", "", "the account's username (required)")
		fs.StringVar(&code, "code", "", "one of the account's recovery codes, or - to read it from stdin (required)")
		fs.BoolVar(&keep, "keep-other-devices", false, "leave the account's other devices signed in (default: sign them out)")
		return func() (err error) {
			if username == "" {
				return fmt.Errorf("%w: --username is required", errUsage)
			}
			code, err = readCode(e, code, "recovery code")
			return err
		}
	}
	return runJoinCmd(ctx, clientRecoverDoc, args, e, flags, func(c *client.Client, deviceName string) (*client.Session, error) {
		return c.Recover(ctx, username, code, deviceName, !keep)
	})
}

// maxCodeInput bounds a code read from stdin.
const maxCodeInput = 1 << 10

// readCode returns the code given by --code: the flag's value, or with
// "-" the first line of stdin (so that a code stays out of the shell
// history and the process list).
func readCode(e *env, v, what string) (string, error) {
	if v == "-" {
		if isTerminal(e.stdin) {
			fmt.Fprintf(e.stderr, "%s: ", upperFirst(what))
		}
		line, err := bufio.NewReader(io.LimitReader(e.stdin, maxCodeInput)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the %s from stdin: %w", what, err)
		}
		v = strings.TrimSpace(line)
		if v == "" {
			return "", fmt.Errorf("%w: no %s on stdin", errUsage, what)
		}
	}
	if v == "" {
		return "", fmt.Errorf("%w: --code is required", errUsage)
	}
	return v, nil
}

func clientRename(ctx context.Context, args []string, e *env) error {
	var username string
	flags := func(fs *flag.FlagSet) func() error {
		fs.StringVar(&username, "username", "", "the new username (required)")
		return func() error {
			if username == "" {
				return fmt.Errorf("%w: --username is required", errUsage)
			}
			return nil
		}
	}
	return runClientCmd(ctx, clientRenameDoc, args, e, flags, func(c *client.Client) error {
		me, err := c.Rename(ctx, username)
		if me == nil {
			return err
		}
		if werr := writeJSON(e, me); err == nil {
			err = werr
		}
		return err
	})
}

// errNotConfirmed: client delete was not confirmed.
var errNotConfirmed = errors.New("not confirmed; nothing was deleted")

func clientDelete(ctx context.Context, args []string, e *env) error {
	var yes bool
	flags := func(fs *flag.FlagSet) func() error {
		fs.BoolVar(&yes, "yes", false, "delete without asking")
		return nil
	}
	return runClientCmd(ctx, clientDeleteDoc, args, e, flags, func(c *client.Client) error {
		s, err := c.Session(ctx)
		if err != nil {
			return err
		}
		if !yes {
			if err := confirmDelete(e, s); err != nil {
				return err
			}
		}
		if err := c.DeleteAccount(ctx); err != nil {
			return err
		}
		return writeJSON(e, struct {
			Deleted   bool   `json:"deleted"`
			AccountID string `json:"account_id"`
			Username  string `json:"username"`
		}{true, s.AccountID, s.Username})
	})
}

// confirmDelete asks the user on the terminal to type the account's
// username. Without a terminal it refuses: a script must say --yes.
func confirmDelete(e *env, s *client.Session) error {
	if !isTerminal(e.stdin) {
		return fmt.Errorf("%w: no terminal to confirm on; pass --yes to delete account %s (%s)", errNotConfirmed, s.Username, s.AccountID)
	}
	fmt.Fprintf(e.stderr, "This deletes account %s (%s) for good: every device is signed out and the username stays taken for a while.\nType the username to confirm: ", s.Username, s.AccountID)
	line, err := bufio.NewReader(io.LimitReader(e.stdin, maxCodeInput)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if typed := strings.TrimSpace(line); typed == "" || !strings.EqualFold(typed, s.Username) {
		return errNotConfirmed
	}
	return nil
}

// isTerminal reports whether r is an interactive terminal: a character
// device other than the null device. Tests replace it.
var isTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
