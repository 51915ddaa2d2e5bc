package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/live"
	"github.com/hallpass/hallpass/keys/redisring"
)

// defaultPruneAfter is how long a retired key stays published: the longest
// access-token lifetime (60 min) plus verifier leeway (30 s), whatever the
// issuers' --access-ttl is now (tokens signed under a longer one may still
// be in flight). Serve's key ring uses the same (keys.DefaultRetiredKeep).
const defaultPruneAfter = keys.DefaultRetiredKeep

func keysGroup() group {
	return group{
		name:    "keys",
		summary: "manage the signing-key ring in a directory",
		detail: `The ring directory holds the Ed25519 signing keys (ring.json), the
refresh-token keys (local.json) and the peppers that key the digests of link
and recovery codes (pepper.json), their secrets wrapped under a wrapping key
(--wrap-key-file) or a passphrase (--passphrase-file). Commands that open
secrets need one of them; list and export-public read the public half only.
Running issuers on the directory follow every change within 2 s.`,
		cmds: []command{
			{keysInitDoc, keysInit},
			{keysRotateDoc, keysRotate},
			{keysRevokeDoc, keysRevoke},
			{keysRotateRefreshDoc, keysRotateRefresh},
			{keysRotatePepperDoc, keysRotatePepper},
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
			return nil, fmt.Errorf("--passphrase-file: %w", err)
		}
		return filestore.PasswordWithParams(b, ringArgon2, keys.DefaultArgon2Limits)
	case p.wrapKeyFile != "":
		w, err := loadWrapKey(p.wrapKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--wrap-key-file: %w", err)
		}
		return filestore.WrapKey(w)
	default:
		return filestore.InsecurePlaintext(slog.New(slog.NewTextHandler(e.stderr, nil))), nil
	}
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
	summary: "create a key ring (one current, one next key), the refresh-token keys and the pepper",
	detail:  "Refuses to overwrite an existing ring. The directory is created with mode 0700.",
	examples: []string{
		"hallpass keys new-wrap-key --out wrap.key",
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
	detail: `The retired key's secret is destroyed: it never signs again, and the ring
keeps only its public key, published until --prune-after has passed (60 min
30 s: the longest access token plus verifier leeway). Retired keys older
than that are dropped in the same write. Running issuers on the same
directory serve the change within 2 s, and drop retired keys on their own
when due; with --key-ring redis use "hallpass admin rotate-keys" instead,
or serve --rotate-every.

The next key must have been published at least 2 minutes (twice the key
set's max-age) before it signs, so that verifiers know it: a rotation
sooner after the one before is refused, the ring unchanged, with the time
after which it may run (a ring fresh from keys init rotates at once). To
stop the current key signing now, revoke it (hallpass keys revoke): that is
never held back.`,
	examples: []string{
		"hallpass keys rotate --dir data/keys --wrap-key-file wrap.key",
		"hallpass keys rotate --dir data/keys --passphrase-file passphrase.txt --prune-after 2h",
	},
}

func keysRotate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysRotateDoc, e)
	dir := fs.String("dir", "", "key ring directory")
	prune := pruneAfterFlag(fs)
	var pf protFlags
	pf.register(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkPruneAfter(*prune); err != nil {
		return err
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

func pruneAfterFlag(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("prune-after", defaultPruneAfter, "drop retired keys that stopped signing longer ago than this (>= max token lifetime + leeway)")
}

func checkPruneAfter(d time.Duration) error {
	if d < defaultPruneAfter {
		return fmt.Errorf("%w: --prune-after must be at least %s", errUsage, defaultPruneAfter)
	}
	return nil
}

var keysRevokeDoc = cmdDoc{
	name:    "keys revoke",
	args:    "--dir DIR --kid k4.pid.ID (--wrap-key-file FILE | --passphrase-file FILE)",
	summary: "withdraw a key at once",
	detail: `Its secret is destroyed and it is published as revoked: verifiers refuse
every token it signed. Revoking the current key rotates first. It cannot be
undone. Retired keys older than --prune-after are dropped in the same write.`,
	examples: []string{
		"hallpass keys list --dir data/keys",
		"hallpass keys revoke --dir data/keys --wrap-key-file wrap.key --kid k4.pid.<id from keys list>",
	},
}

func keysRevoke(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysRevokeDoc, e)
	dir := fs.String("dir", "", "key ring directory")
	kid := fs.String("kid", "", "id (k4.pid...) of the key to revoke")
	prune := pruneAfterFlag(fs)
	var pf protFlags
	pf.register(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkPruneAfter(*prune); err != nil {
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
	now := time.Now()
	r, err := st.Update(ctx, func(r *keys.Ring) error {
		r.Prune(now, *prune)
		return r.Revoke(id, nil, now)
	})
	if err != nil {
		return fileRingErr(err, st)
	}
	return printRing(e, r)
}

var keysRotateRefreshDoc = cmdDoc{
	name:    "keys rotate-refresh",
	args:    "(--dir DIR | --store REDIS-URL) (--wrap-key-file FILE | --passphrase-file FILE) [--keep DURATION | --end-all-sessions]",
	summary: "make a new refresh-token key; older ones open tokens until --keep has passed",
	detail: `The new key seals every refresh token from now on. The replaced keys still
open the tokens they sealed for --keep (at least the issuers' --refresh-ttl,
the longest a refresh token lives; the default is HALLPASS_REFRESH_TTL or
90 days), and retired keys older than that are dropped. Running issuers
follow the change without a restart (within 2 s on a directory, a round trip
on Redis) and drop keys past --refresh-ttl on their own.

--dir names a key ring directory (--key-ring files); --store the Redis of a
--key-ring redis ring, whose secrets are wrapped under --wrap-key-file.

--end-all-sessions drops every older key instead: no refresh token issued
before opens any more, so every device session ends and each device must
join its account again (a link or recovery code). For a real compromise;
"hallpass admin revoke --kind all" refuses the access tokens too, and
POST /v1/admin/sessions/end-all on the admin API does both.`,
	examples: []string{
		"hallpass keys rotate-refresh --dir data/keys --wrap-key-file wrap.key",
		"hallpass keys rotate-refresh --dir data/keys --passphrase-file passphrase.txt --keep 2160h",
		"hallpass keys rotate-refresh --store redis://127.0.0.1:6379/0 --wrap-key-file wrap.key",
		"hallpass keys rotate-refresh --dir data/keys --wrap-key-file wrap.key --end-all-sessions",
	},
}

func keysRotateRefresh(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysRotateRefreshDoc, e)
	var sf secretStoreFlags
	sf.register(fs, e)
	var ee envErr
	keep := fs.Duration("keep", ee.dur(e, "HALLPASS_REFRESH_TTL", issuer.DefaultRefreshTTL), "how long replaced keys still open tokens: at least the issuers' --refresh-ttl [HALLPASS_REFRESH_TTL]")
	endAll := fs.Bool("end-all-sessions", false, "drop every older key: no refresh token issued before opens (every session ends)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(ee.errs) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(ee.errs, "; "))
	}
	keepSet := false
	fs.Visit(func(f *flag.Flag) { keepSet = keepSet || f.Name == "keep" })
	switch {
	case *endAll && keepSet:
		return fmt.Errorf("%w: --keep does not apply with --end-all-sessions (no older key is kept)", errUsage)
	case *keep <= 0:
		return fmt.Errorf("%w: --keep must be positive (to drop every older key, use --end-all-sessions)", errUsage)
	}
	ss, err := sf.open(ctx, e)
	if err != nil {
		return err
	}
	defer ss.close()
	if *endAll {
		err = ss.st.ResetLocal(ctx, time.Now())
	} else {
		err = ss.st.RotateLocal(ctx, time.Now(), *keep)
	}
	if err != nil {
		return ss.explain(err)
	}
	if *endAll {
		fmt.Fprintln(e.stderr, "every refresh-token key replaced: every session has ended")
	}
	list, err := ss.st.LoadLocal(ctx)
	if err != nil {
		return ss.explain(err)
	}
	rows := make([]secretRow, 0, len(list))
	for _, l := range list {
		rows = append(rows, secretRow{l.Key.ID(), l.Created, l.Retired})
	}
	return printSecrets(e, rows)
}

var keysRotatePepperDoc = cmdDoc{
	name:    "keys rotate-pepper",
	args:    "(--dir DIR | --store REDIS-URL) (--wrap-key-file FILE | --passphrase-file FILE)",
	summary: "make a new pepper for the digests of link and recovery codes; older ones are kept",
	detail: `New link and recovery codes are digested under the new pepper. Older peppers
are kept for good, never pruned, so that recovery codes made under them keep
working. Running issuers follow the change without a restart. --dir names a
key ring directory, --store the Redis of a --key-ring redis ring. Only the
peppers' ids (k4.lid, one-way hashes) are printed.`,
	examples: []string{
		"hallpass keys rotate-pepper --dir data/keys --wrap-key-file wrap.key",
		"hallpass keys rotate-pepper --store redis://127.0.0.1:6379/0 --wrap-key-file wrap.key",
	},
}

func keysRotatePepper(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(keysRotatePepperDoc, e)
	var sf secretStoreFlags
	sf.register(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ss, err := sf.open(ctx, e)
	if err != nil {
		return err
	}
	defer ss.close()
	if err := ss.st.RotatePepper(ctx, time.Now()); err != nil {
		return ss.explain(err)
	}
	list, err := ss.st.LoadPeppers(ctx)
	if err != nil {
		return ss.explain(err)
	}
	rows := make([]secretRow, 0, len(list))
	for _, p := range list {
		rows = append(rows, secretRow{p.Pepper.ID(), p.Created, p.Retired})
	}
	return printSecrets(e, rows)
}

// secretStoreFlags name the ring whose refresh-token keys and peppers a
// command changes: a directory, or the Redis of a --key-ring redis ring.
type secretStoreFlags struct {
	dir, store string
	prot       protFlags
}

func (f *secretStoreFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&f.dir, "dir", "", "key ring directory (--key-ring files)")
	fs.StringVar(&f.store, "store", "", "Redis URL of a --key-ring redis ring (redis://, rediss://, redis+sentinel://, redis+cluster://); needs --wrap-key-file")
	f.prot.register(fs, e)
}

// openedSecrets is a ring's secret store, how to explain its errors and
// how to release it.
type openedSecrets struct {
	st      live.SecretStore
	explain func(error) error
	close   func()
}

// open opens the ring the flags name; it must exist (the secrets beside
// it are created when missing, as serve does).
func (f *secretStoreFlags) open(ctx context.Context, e *env) (*openedSecrets, error) {
	if (f.dir == "") == (f.store == "") {
		return nil, fmt.Errorf("%w: give exactly one of --dir and --store", errUsage)
	}
	var out *openedSecrets
	if f.dir != "" {
		st, err := openStore(f.dir, &f.prot, e)
		if err != nil {
			return nil, err
		}
		out = &openedSecrets{st: st, explain: func(err error) error { return fileRingErr(err, st) }, close: func() {}}
		if !st.Exists() {
			return nil, out.explain(filestore.ErrNotFound)
		}
	} else {
		if f.prot.wrapKeyFile == "" || f.prot.passphraseFile != "" || f.prot.insecure {
			return nil, fmt.Errorf("%w: a ring in Redis needs --wrap-key-file (and no other protection flag)", errUsage)
		}
		w, err := loadWrapKey(f.prot.wrapKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--wrap-key-file: %w", err)
		}
		client, _, err := redisClient(f.store)
		if err != nil {
			return nil, err
		}
		st, err := redisring.New(client, w, redisring.Options{})
		if err != nil {
			client.Close()
			return nil, err
		}
		out = &openedSecrets{st: st, explain: redisRingErr, close: func() { client.Close() }}
		if ok, err := st.Exists(ctx); err != nil || !ok {
			out.close()
			if err == nil {
				err = errors.New("no key ring in Redis: `hallpass serve --key-ring redis` creates it")
			}
			return nil, redisRingErr(err)
		}
	}
	if _, _, err := out.st.EnsureSecrets(ctx, time.Now()); err != nil {
		out.close()
		return nil, out.explain(err)
	}
	return out, nil
}

// secretRow is what is printed of a refresh-token key or pepper: its id
// (a one-way hash) and times, never the secret.
type secretRow struct {
	id               keys.KeyID
	created, retired time.Time
}

func printSecrets(e *env, rows []secretRow) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tID\tCREATED\tRETIRED")
	for i, r := range rows {
		status := keys.StatusRetired
		if i == 0 {
			status = keys.StatusCurrent
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", status, r.id, fmtTime(r.created), fmtTime(r.retired))
	}
	return tw.Flush()
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
	args:    "[--out FILE]",
	summary: "make a new random 32-byte wrapping key (base64url) in a new 0600 file, or print it",
	detail: `The key for --wrap-key-file: it wraps the ring's secrets at rest
(k4.secret-wrap.pie), and with --key-ring redis it is also the root of the
ring's MACs. Keep it apart from the ring, readable only by the service;
whoever holds both can sign tokens.

--out creates FILE with mode 0600 and refuses to overwrite one that exists.
Without --out the key is printed on stdout: a file made with "> FILE" gets
the umask's mode, usually 0644, which every command refuses for a secret
file until "chmod 600 FILE".`,
	examples: []string{"hallpass keys new-wrap-key --out wrap.key"},
}

func keysNewWrapKey(_ context.Context, args []string, e *env) error {
	fs := newFlagSet(keysNewWrapKeyDoc, e)
	out := fs.String("out", "", "file to create with mode 0600 (refused if it exists); default: print on stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: keys new-wrap-key takes no arguments (--out FILE names the file)", errUsage)
	}
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		return err
	}
	b := w.UnsafeBytes()
	defer clear(b)
	line := base64.RawURLEncoding.EncodeToString(b) + "\n"
	if *out == "" {
		_, err = io.WriteString(e.stdout, line)
		return err
	}
	if err := writeNewSecretFile(*out, []byte(line)); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(e.stderr, "wrote a new wrapping key to %s (mode 0600)\n", *out)
	return nil
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
