package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hallpass/hallpass/internal/filelock"
	"github.com/hallpass/hallpass/keys"
)

// Errors.
var (
	ErrNotFound   = errors.New("filestore: no key ring in directory")
	ErrExists     = errors.New("filestore: a key ring already exists in directory")
	ErrLocked     = errors.New("filestore: key ring is locked by another writer")
	ErrCorrupt    = errors.New("filestore: key ring file is corrupt")
	ErrProtection = errors.New("filestore: key ring protection does not match")
	// ErrInsecureDir: a key ring file others may read or write, a
	// directory others may write to, or a file that is a symbolic link.
	ErrInsecureDir = errors.New("filestore: key ring file or directory is open to other users")
	// ErrWrongPassphrase and ErrWrongWrapKey: the secret the Store was
	// given does not open a stored key. Which one tells the operator what
	// to fix; a wrong secret and an altered file cannot be told apart. Both
	// are returned wrapped together with keys.ErrUnwrap.
	ErrWrongPassphrase = errors.New("filestore: the passphrase does not open the key ring (wrong passphrase, or the file was altered)")
	ErrWrongWrapKey    = errors.New("filestore: the wrapping key does not open the key ring (wrong wrapping key, or the file was altered)")
)

const (
	ringFile   = "ring.json"
	lockFile   = ".lock"
	formatV1   = 1
	maxFileLen = 1 << 20
)

// Protection says how secret keys are stored in the ring file.
type Protection string

const (
	// ProtectionPassword wraps each secret key as PASERK k4.secret-pw
	// (Argon2id over a passphrase).
	ProtectionPassword Protection = "password"
	// ProtectionWrapKey wraps each secret key as PASERK k4.secret-wrap.pie
	// under a 32-byte wrapping key.
	ProtectionWrapKey Protection = "wrap-key"
	// ProtectionPlaintext stores k4.secret in the clear. Development only.
	ProtectionPlaintext Protection = "plaintext"
)

// Protector seals and opens secret keys for storage.
type Protector interface {
	Protection() Protection
	Seal(k *keys.SecretKey, rand io.Reader) (string, error)
	Open(paserk string) (*keys.SecretKey, error)
	SealLocal(k *keys.LocalKey, rand io.Reader) (string, error)
	OpenLocal(paserk string) (*keys.LocalKey, error)
}

type passwordProtector struct {
	pw     []byte
	params keys.Argon2Params
	limits keys.Argon2Limits
}

// Password returns a Protector that wraps keys as k4.secret-pw with the
// default Argon2id parameters.
func Password(passphrase []byte) (Protector, error) {
	return PasswordWithParams(passphrase, keys.DefaultArgon2Params, keys.DefaultArgon2Limits)
}

// PasswordWithParams is Password with explicit Argon2id parameters and the
// limits applied to parameters read back from disk.
func PasswordWithParams(passphrase []byte, p keys.Argon2Params, lim keys.Argon2Limits) (Protector, error) {
	if len(passphrase) < 8 {
		return nil, errors.New("filestore: passphrase must be at least 8 bytes")
	}
	return &passwordProtector{pw: append([]byte(nil), passphrase...), params: p, limits: lim}, nil
}

func (p *passwordProtector) Protection() Protection { return ProtectionPassword }
func (p *passwordProtector) Seal(k *keys.SecretKey, rand io.Reader) (string, error) {
	return keys.WrapSecretPassword(k, p.pw, p.params, rand)
}
func (p *passwordProtector) Open(s string) (*keys.SecretKey, error) {
	return keys.UnwrapSecretPassword(s, p.pw, p.limits)
}
func (p *passwordProtector) SealLocal(k *keys.LocalKey, rand io.Reader) (string, error) {
	return keys.WrapLocalPassword(k, p.pw, p.params, rand)
}
func (p *passwordProtector) OpenLocal(s string) (*keys.LocalKey, error) {
	return keys.UnwrapLocalPassword(s, p.pw, p.limits)
}

type wrapProtector struct{ w *keys.WrappingKey }

// WrapKey returns a Protector that wraps keys as k4.secret-wrap.pie.
func WrapKey(w *keys.WrappingKey) (Protector, error) {
	if w == nil {
		return nil, errors.New("filestore: nil wrapping key")
	}
	return &wrapProtector{w: w}, nil
}

func (p *wrapProtector) Protection() Protection { return ProtectionWrapKey }
func (p *wrapProtector) Seal(k *keys.SecretKey, rand io.Reader) (string, error) {
	return keys.WrapSecretPIE(k, p.w, rand)
}
func (p *wrapProtector) Open(s string) (*keys.SecretKey, error) { return keys.UnwrapSecretPIE(s, p.w) }
func (p *wrapProtector) SealLocal(k *keys.LocalKey, rand io.Reader) (string, error) {
	return keys.WrapLocalPIE(k, p.w, rand)
}
func (p *wrapProtector) OpenLocal(s string) (*keys.LocalKey, error) {
	return keys.UnwrapLocalPIE(s, p.w)
}

type plaintextProtector struct{}

// InsecurePlaintext returns a Protector that stores secret keys unencrypted.
// It logs a warning through log every time it is used.
//
// SECURITY: anyone who can read the directory can sign tokens. Use only for
// local development.
func InsecurePlaintext(log *slog.Logger) Protector {
	if log == nil {
		log = slog.Default()
	}
	log.Warn("INSECURE: key ring secret keys are stored in plaintext; use only for development")
	return plaintextProtector{}
}

func (plaintextProtector) Protection() Protection { return ProtectionPlaintext }
func (plaintextProtector) Seal(k *keys.SecretKey, _ io.Reader) (string, error) {
	return k.PlaintextPASERK(), nil
}
func (plaintextProtector) Open(s string) (*keys.SecretKey, error) { return keys.ParseSecretKey(s) }
func (plaintextProtector) SealLocal(k *keys.LocalKey, _ io.Reader) (string, error) {
	return k.PlaintextPASERK(), nil
}
func (plaintextProtector) OpenLocal(s string) (*keys.LocalKey, error) { return keys.ParseLocalKey(s) }

// fileFormat is the on-disk layout of ring.json.
type fileFormat struct {
	Format     int         `json:"format"`
	Protection Protection  `json:"protection"`
	Keys       []fileEntry `json:"keys"`
}

type fileEntry struct {
	Kid       keys.KeyID  `json:"kid"`
	Status    keys.Status `json:"status"`
	Public    string      `json:"public"`
	Secret    string      `json:"secret,omitempty"`
	Created   time.Time   `json:"created"`
	Activated *time.Time  `json:"activated,omitempty"`
	Retired   *time.Time  `json:"retired,omitempty"`
	Revoked   *time.Time  `json:"revoked,omitempty"`
}

// Store keeps a key ring in a directory: ring.json (mode 0600) written
// atomically (temp file, fsync, rename, fsync of the directory), and a lock
// file that serialises writers across processes.
type Store struct {
	dir  string
	prot Protector
	rand io.Reader
	// LockTimeout bounds how long a writer waits for the lock.
	LockTimeout time.Duration
	// PollInterval is how often Watch reads the files to learn of another
	// writer's change (default DefaultPollInterval).
	PollInterval time.Duration
}

// New returns a store for dir. prot may be nil for read-only public use
// (LoadPublic).
func New(dir string, prot Protector, rand io.Reader) (*Store, error) {
	if dir == "" {
		return nil, errors.New("filestore: empty directory")
	}
	return &Store{dir: dir, prot: prot, rand: rand, LockTimeout: 5 * time.Second, PollInterval: DefaultPollInterval}, nil
}

// Dir returns the directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path() string { return filepath.Join(s.dir, ringFile) }

// Exists reports whether the directory holds a ring.
func (s *Store) Exists() bool {
	_, err := os.Stat(s.path())
	return err == nil
}

// Init creates a new ring (one current, one next key) and stores it, with
// the refresh-token keys and the pepper unless they exist. It refuses to
// overwrite an existing ring.
func (s *Store) Init(ctx context.Context, now time.Time) (*keys.Ring, error) {
	if s.prot == nil {
		return nil, errors.New("filestore: Init needs a Protector")
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: create directory: %w", err)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if s.Exists() {
		return nil, ErrExists
	}
	r, err := keys.NewRing(s.rand, now)
	if err != nil {
		return nil, err
	}
	if err := s.save(r); err != nil {
		return nil, err
	}
	if _, _, err := s.ensureSecretsLocked(now); err != nil {
		return nil, err
	}
	return r, nil
}

// Load reads the ring and opens every secret key.
func (s *Store) Load(ctx context.Context) (*keys.Ring, error) {
	if s.prot == nil {
		return nil, errors.New("filestore: Load needs a Protector")
	}
	ff, err := s.read()
	if err != nil {
		return nil, err
	}
	if ff.Protection != s.prot.Protection() {
		return nil, fmt.Errorf("%w: the ring is protected by %s, not %s", ErrProtection, ff.Protection, s.prot.Protection())
	}
	entries, err := s.decode(ff, true)
	if err != nil {
		return nil, err
	}
	return keys.RestoreRing(entries)
}

// LoadPublic reads the ring's public half only; no secret is needed or opened.
func (s *Store) LoadPublic(ctx context.Context) (*keys.Ring, error) {
	ff, err := s.read()
	if err != nil {
		return nil, err
	}
	entries, err := s.decode(ff, false)
	if err != nil {
		return nil, err
	}
	return keys.RestorePublicRing(entries)
}

// Protection returns how the stored ring protects its secrets.
func (s *Store) Protection() (Protection, error) {
	ff, err := s.read()
	if err != nil {
		return "", err
	}
	return ff.Protection, nil
}

// Update loads the ring under the writer lock, applies fn and stores the
// result atomically. If fn fails nothing is written.
func (s *Store) Update(ctx context.Context, fn func(*keys.Ring) error) (*keys.Ring, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	if err := s.save(r); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Store) read() (*fileFormat, error) {
	return s.readFile(s.path())
}

func (s *Store) readFile(path string) (*fileFormat, error) {
	f, err := openPrivate(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileLen+1))
	if err != nil {
		return nil, fmt.Errorf("filestore: read: %w", err)
	}
	if len(b) > maxFileLen {
		return nil, ErrCorrupt
	}
	var ff fileFormat
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ff); err != nil || ff.Format != formatV1 {
		return nil, ErrCorrupt
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the document", ErrCorrupt)
	}
	switch ff.Protection {
	case ProtectionPassword, ProtectionWrapKey, ProtectionPlaintext:
	default:
		return nil, ErrCorrupt
	}
	return &ff, nil
}

func (s *Store) decode(ff *fileFormat, secrets bool) ([]keys.RingEntry, error) {
	out := make([]keys.RingEntry, 0, len(ff.Keys))
	for _, fe := range ff.Keys {
		pub, err := keys.ParsePublicKey(fe.Public)
		if err != nil || pub.ID() != fe.Kid {
			return nil, fmt.Errorf("%w: public key does not match its kid", ErrCorrupt)
		}
		e := keys.RingEntry{Public: pub, Status: fe.Status, Created: fe.Created}
		if fe.Activated != nil {
			e.Activated = *fe.Activated
		}
		if fe.Retired != nil {
			e.Retired = *fe.Retired
		}
		if fe.Revoked != nil {
			e.Revoked = *fe.Revoked
		}
		// A retired key's secret is not opened, even if an older ring
		// stored it: it never signs again (see keys.RestoreRing).
		if secrets && (fe.Status == keys.StatusCurrent || fe.Status == keys.StatusNext) {
			sk, err := s.prot.Open(fe.Secret)
			if err != nil {
				return nil, s.openErr("secret key", fe.Kid, err)
			}
			e.Secret = sk
		}
		out = append(out, e)
	}
	return out, nil
}

// openErr reports a stored key that did not open. A wrong passphrase and
// a wrong wrapping key are different mistakes, so the error names the
// secret that was tried (never its value).
func (s *Store) openErr(what string, kid keys.KeyID, err error) error {
	if errors.Is(err, keys.ErrUnwrap) {
		switch s.prot.Protection() {
		case ProtectionPassword:
			return fmt.Errorf("%w: %s %s: %w", ErrWrongPassphrase, what, kid, err)
		case ProtectionWrapKey:
			return fmt.Errorf("%w: %s %s: %w", ErrWrongWrapKey, what, kid, err)
		}
	}
	return fmt.Errorf("filestore: open %s %s: %w", what, kid, err)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *Store) save(r *keys.Ring) error {
	ff := fileFormat{Format: formatV1, Protection: s.prot.Protection()}
	for _, e := range r.Entries() {
		fe := fileEntry{
			Kid: e.ID(), Status: e.Status, Public: e.Public.PASERK(), Created: e.Created.UTC(),
			Activated: timePtr(e.Activated), Retired: timePtr(e.Retired), Revoked: timePtr(e.Revoked),
		}
		// Only the current and the next key keep a secret: a retired or
		// revoked key's is not written (it never signs again).
		if e.Status == keys.StatusCurrent || e.Status == keys.StatusNext {
			if e.Secret == nil {
				return fmt.Errorf("filestore: key %s has no secret", e.ID())
			}
			sealed, err := s.prot.Seal(e.Secret, s.rand)
			if err != nil {
				return fmt.Errorf("filestore: seal key %s: %w", e.ID(), err)
			}
			fe.Secret = sealed
		}
		ff.Keys = append(ff.Keys, fe)
	}
	b, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.dir, ringFile, append(b, '\n'))
}

// writeAtomic writes name in dir through a temp file: write, fsync, chmod
// 0600, rename, fsync the directory. A crash leaves the old or the new file,
// never a torn one.
func writeAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("filestore: temp file: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("filestore: chmod: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("filestore: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("filestore: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("filestore: close: %w", err)
	}
	if err := os.Rename(tmpName, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("filestore: rename: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		defer d.Close()
		if err := d.Sync(); err != nil {
			return fmt.Errorf("filestore: fsync directory: %w", err)
		}
	}
	return nil
}

// openPrivate opens a key ring file for reading, refusing what others
// could have written or may read: the file must be a regular file (not a
// symbolic link, whose target's directory goes unchecked) with no group or
// other permission bit, in a directory only its owner may write to (see
// checkDir). Only the secrets are authenticated; whoever can change the
// file could add a public key that verifies.
func openPrivate(path string) (*os.File, error) {
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, ErrNotFound
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("%w: %s is a symbolic link; keep the file itself in the directory", ErrInsecureDir, path)
	case err != nil:
		return nil, fmt.Errorf("filestore: open: %w", err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("filestore: stat: %w", err)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%w: %s is not a regular file", ErrInsecureDir, path)
	case fi.Mode().Perm()&0o077 != 0:
		err = fmt.Errorf("%w: %s has mode %v; make it its owner's only: chmod 600 %s", ErrInsecureDir, path, fi.Mode().Perm(), path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkDir refuses a key ring directory that group or others may write
// to: they could replace a file in it (rename needs no right on the file).
// Group or other read and search are allowed; the files are 0600.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("filestore: directory: %w", err)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%w: directory %s has mode %v; only its owner may write to it: chmod 700 %s", ErrInsecureDir, dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// lock takes the exclusive writer lock (flock on dir/.lock), waiting up to
// LockTimeout or until ctx ends.
func (s *Store) lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: create directory: %w", err)
	}
	if err := checkDir(s.dir); err != nil {
		return nil, err
	}
	unlock, err := filelock.Lock(ctx, filepath.Join(s.dir, lockFile), s.LockTimeout)
	switch {
	case errors.Is(err, filelock.ErrTimeout):
		return nil, ErrLocked
	case err != nil && ctx.Err() == nil:
		return nil, fmt.Errorf("filestore: %w", err)
	}
	return unlock, err
}
