package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
)

// defaultPruneAfter is how long a retired key stays published: the longest
// access-token lifetime (60 min) plus verifier leeway, rounded up.
const defaultPruneAfter = 61 * time.Minute

func keysGroup() group {
	return group{
		name:    "keys",
		summary: "manage the signing-key ring in a directory",
		detail: `The ring directory holds the Ed25519 signing keys (ring.json) and the
refresh-token keys (local.json), their secrets wrapped under a wrapping key
(--wrap-key-file) or a passphrase (--passphrase-file). Commands that open
secrets need one of them; list and export-public read the public half only.`,
		cmds: []command{
			{keysInitDoc, keysInit},
			{keysRotateDoc, keysRotate},
			{keysRevokeDoc, keysRevoke},
			{keysListDoc, keysList},
			{keysExportDoc, keysExport},
			{keysNewWrapKeyDoc, keysNewWrapKey},
		},
	}
}

// ringArgon2 are the Argon2id costs for new passphrase-wrapped ring keys;
// tests lower them (the costs are stored with each key, so rings made with
// other costs still open).
var ringArgon2 = keys.DefaultArgon2Params

// protFlags are the flags that choose how secret keys are protected.
type protFlags struct {
	passphraseFile string
	wrapKeyFile    string
	insecure       bool
}

func (p *protFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&p.passphraseFile, "passphrase-file", e.getenv("HALLPASS_PASSPHRASE_FILE"), "file holding the passphrase that wraps secret keys (k4.secret-pw) [HALLPASS_PASSPHRASE_FILE]")
	fs.StringVar(&p.wrapKeyFile, "wrap-key-file", e.getenv("HALLPASS_WRAP_KEY_FILE"), "file holding a 32-byte wrapping key, raw or base64url or hex (k4.secret-wrap.pie) [HALLPASS_WRAP_KEY_FILE]")
	fs.BoolVar(&p.insecure, "insecure-plaintext", false, "store secret keys unencrypted (development only)")
}

func (p *protFlags) protector(e *env) (filestore.Protector, error) {
	n := 0
	for _, set := range []bool{p.passphraseFile != "", p.wrapKeyFile != "", p.insecure} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: give exactly one of --passphrase-file, --wrap-key-file, --insecure-plaintext", errUsage)
	}
	switch {
	case p.passphraseFile != "":
		b, err := readSecretFile(p.passphraseFile)
		if err != nil {
			return nil, err
		}
		return filestore.PasswordWithParams(b, ringArgon2, keys.DefaultArgon2Limits)
	case p.wrapKeyFile != "":
		w, err := loadWrapKey(p.wrapKeyFile)
		if err != nil {
			return nil, err
		}
		return filestore.WrapKey(w)
	default:
		return filestore.InsecurePlaintext(slog.New(slog.NewTextHandler(e.stderr, nil))), nil
	}
}

// readSecretFile reads a small secret file and trims one trailing newline.
func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	if len(b) > 4096 {
		return nil, errors.New("secret file is larger than 4 KiB")
	}
	s := strings.TrimRight(string(b), "\r\n")
	return []byte(s), nil
}

// loadWrapKey accepts 32 raw bytes, or 43 characters of base64url, or 64 hex
// digits, each optionally followed by a newline.
func loadWrapKey(path string) (*keys.WrappingKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read wrap key file: %w", err)
	}
	if len(raw) == 32 {
		return keys.WrappingKeyFromBytes(raw)
	}
	s := strings.TrimSpace(string(raw))
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return keys.WrappingKeyFromBytes(b)
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return keys.WrappingKeyFromBytes(b)
	}
	return nil, errors.New("wrap key file must hold 32 bytes (raw, base64url or hex)")
}

func requireDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	return nil
}

func openStore(dir string, pf *protFlags, e *env) (*filestore.Store, error) {
	if err := requireDir(dir); err != nil {
		return nil, err
	}
	prot, err := pf.protector(e)
	if err != nil {
		return nil, err
	}
	return filestore.New(dir, prot, nil)
}

var keysInitDoc = cmdDoc{
	name:    "keys init",
	args:    "--dir DIR (--wrap-key-file FILE | --passphrase-file FILE)",
	summary: "create a key ring (one current, one next key) and the refresh-token keys",
	detail:  "Refuses to overwrite an existing ring. The directory is created with mode 0700.",
	examples: []string{
		"hallpass keys new-wrap-key > wrap.key && chmod 600 wrap.key",
		"hallpass keys init --dir data/keys --wrap-key-file wrap.key",
		"hallpass keys init --dir data/keys --passphrase-file passphrase.txt",
	},
}

func keysInit(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysInitDoc, e)
	dir := fs.String("dir", "", "key ring directory (created 0700)")
	var pf protFlags
	pf.register(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, err := openStore(*dir, &pf, e)
	if err != nil {
		return err
	}
	r, err := st.Init(ctx, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "created key ring in %s\n", *dir)
	return printRing(e, r)
}

var keysRotateDoc = cmdDoc{
	name:    "keys rotate",
	args:    "--dir DIR (--wrap-key-file FILE | --passphrase-file FILE)",
	summary: "promote next to current, retire current, add a new next key",
	detail: `Retired keys that stopped signing longer ago than --prune-after are dropped
first. Running issuers on the same directory see the change when they
restart; with --key-ring redis use "hallpass admin rotate-keys" instead.`,
	examples: []string{
		"hallpass keys rotate --dir data/keys --wrap-key-file wrap.key",
		"hallpass keys rotate --dir data/keys --passphrase-file passphrase.txt --prune-after 2h",
	},
}

func keysRotate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysRotateDoc, e)
	dir := fs.String("dir", "", "key ring directory")
	prune := fs.Duration("prune-after", defaultPruneAfter, "drop retired keys that stopped signing longer ago than this (>= max token lifetime + leeway)")
	var pf protFlags
	pf.register(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *prune < defaultPruneAfter {
		return fmt.Errorf("%w: --prune-after must be at least %s", errUsage, defaultPruneAfter)
	}
	st, err := openStore(*dir, &pf, e)
	if err != nil {
		return err
	}
	now := time.Now()
	r, err := st.Update(ctx, func(r *keys.Ring) error {
		r.Prune(now, *prune)
		return r.Rotate(nil, now)
	})
	if err != nil {
		return fileRingErr(err, st)
	}
	return printRing(e, r)
}

var keysRevokeDoc = cmdDoc{
	name:    "keys revoke",
	args:    "--dir DIR --kid k4.pid.ID (--wrap-key-file FILE | --passphrase-file FILE)",
	summary: "withdraw a key at once",
	detail: `Its secret is destroyed and it is published as revoked: verifiers refuse
every token it signed. Revoking the current key rotates first. It cannot be
undone.`,
	examples: []string{
		"hallpass keys list --dir data/keys",
		"hallpass keys revoke --dir data/keys --wrap-key-file wrap.key --kid k4.pid.<id from keys list>",
	},
}

func keysRevoke(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysRevokeDoc, e)
	dir := fs.String("dir", "", "key ring directory")
	kid := fs.String("kid", "", "id (k4.pid...) of the key to revoke")
	var pf protFlags
	pf.register(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	id, err := keys.ParseKeyID(*kid, "pid")
	if err != nil {
		return fmt.Errorf("%w: --kid must be a k4.pid key id", errUsage)
	}
	st, err := openStore(*dir, &pf, e)
	if err != nil {
		return err
	}
	r, err := st.Update(ctx, func(r *keys.Ring) error { return r.Revoke(id, nil, time.Now()) })
	if err != nil {
		return fileRingErr(err, st)
	}
	return printRing(e, r)
}

var keysListDoc = cmdDoc{
	name:     "keys list",
	args:     "--dir DIR [--json]",
	summary:  "list the ring's keys with their status and times (no secret needed)",
	examples: []string{"hallpass keys list --dir data/keys", "hallpass keys list --dir data/keys --json"},
}

func keysList(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysListDoc, e)
	dir := fs.String("dir", "", "key ring directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireDir(*dir); err != nil {
		return err
	}
	st, err := filestore.New(*dir, nil, nil)
	if err != nil {
		return err
	}
	r, err := st.LoadPublic(ctx)
	if err != nil {
		return fileRingErr(err, st)
	}
	if *asJSON {
		type row struct {
			Kid     keys.KeyID  `json:"kid"`
			Status  keys.Status `json:"status"`
			Created time.Time   `json:"created"`
		}
		var rows []row
		for _, en := range r.Entries() {
			rows = append(rows, row{en.ID(), en.Status, en.Created})
		}
		return writeJSON(e, rows)
	}
	return printRing(e, r)
}

func printRing(e *env, r *keys.Ring) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tKID\tCREATED\tACTIVATED\tRETIRED/REVOKED")
	for _, en := range r.Entries() {
		end := en.Retired
		if en.Status == keys.StatusRevoked {
			end = en.Revoked
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", en.Status, en.ID(), fmtTime(en.Created), fmtTime(en.Activated), fmtTime(end))
	}
	return tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

var keysExportDoc = cmdDoc{
	name:    "keys export-public",
	args:    "--dir DIR [--issuer URL]",
	summary: "print the published key set JSON (no secret needed)",
	detail:  "The same document the issuer serves at /.well-known/hallpass/keys, for offline verifiers.",
	examples: []string{
		"hallpass keys export-public --dir data/keys --issuer https://auth.example.com > keyset.json",
	},
}

func keysExport(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysExportDoc, e)
	dir := fs.String("dir", "", "key ring directory")
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "issuer URL written into the key set")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireDir(*dir); err != nil {
		return err
	}
	st, err := filestore.New(*dir, nil, nil)
	if err != nil {
		return err
	}
	r, err := st.LoadPublic(ctx)
	if err != nil {
		return fileRingErr(err, st)
	}
	return writeJSON(e, r.KeySet(*issuer))
}

var keysNewWrapKeyDoc = cmdDoc{
	name:    "keys new-wrap-key",
	summary: "print a new random 32-byte wrapping key (base64url)",
	detail: `The key for --wrap-key-file: it wraps the ring's secrets at rest
(k4.secret-wrap.pie). Keep it apart from the ring, readable only by the
service; whoever holds both can sign tokens.`,
	examples: []string{"hallpass keys new-wrap-key > wrap.key && chmod 600 wrap.key"},
}

func keysNewWrapKey(_ context.Context, args []string, e *env) error {
	fs := newFlagSet(keysNewWrapKeyDoc, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, base64.RawURLEncoding.EncodeToString(w.UnsafeBytes()))
	return nil
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
