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

func runKeys(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "init":
		return keysInit(ctx, args[1:], e)
	case "rotate":
		return keysRotate(ctx, args[1:], e)
	case "revoke":
		return keysRevoke(ctx, args[1:], e)
	case "list":
		return keysList(ctx, args[1:], e)
	case "export-public":
		return keysExport(ctx, args[1:], e)
	case "new-wrap-key":
		return keysNewWrapKey(ctx, args[1:], e)
	}
	fmt.Fprint(e.stderr, usage)
	return fmt.Errorf("%w: unknown keys command %q", errUsage, args[0])
}

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
		return filestore.Password(b)
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

func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{code: 0, silent: true, err: err}
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
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

func keysInit(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("keys init", e)
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

func keysRotate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("keys rotate", e)
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
		return err
	}
	return printRing(e, r)
}

func keysRevoke(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("keys revoke", e)
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
		return err
	}
	return printRing(e, r)
}

func keysList(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("keys list", e)
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
		return err
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

func keysExport(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("keys export-public", e)
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
		return err
	}
	return writeJSON(e, r.KeySet(*issuer))
}

func keysNewWrapKey(_ context.Context, args []string, e *env) error {
	fs := newFlagSet("keys new-wrap-key", e)
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
