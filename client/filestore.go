package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/hallpass/hallpass/keys"
)

// State file layout (JSON, mode 0600):
//
//	{"format":"hallpass-client-state","version":1,
//	 "key":"k4.local-pw.…" or "k4.local-wrap.pie.…",
//	 "nonce":"<24 bytes, base64url>","ciphertext":"<base64url>"}
//
// A random 256-bit data key encrypts the state (XChaCha20-Poly1305, the
// header and the wrapped key as associated data). The data key itself is
// stored wrapped as a PASERK: k4.local-pw (Argon2id over a passphrase) or
// k4.local-wrap.pie (a 32-byte wrapping key). So the costly Argon2id runs
// once per process (the unwrapped data key is cached), and each save only
// re-encrypts the state under a fresh nonce.
const (
	stateFormat  = "hallpass-client-state"
	stateVersion = 1
	maxStateFile = 1 << 20
)

type stateFile struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	Key        string `json:"key"`
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

// stateJSON is the plaintext inside the file.
type stateJSON struct {
	ServerURL         string    `json:"server_url"`
	AccountID         string    `json:"account_id"`
	DeviceID          string    `json:"device_id"`
	Username          string    `json:"username"`
	KeyThumbprint     string    `json:"jkt"`
	AccessToken       string    `json:"access_token,omitempty"`
	AccessTokenExpiry time.Time `json:"access_token_expiry,omitzero"`
	RefreshToken      string    `json:"refresh_token,omitempty"`
	// RefreshRetryID came after version 1 did, as an optional member: a
	// file without it (written before) loads with no retry id, and an
	// older reader ignores it (it refreshes without one, as it always
	// did, and drops it when it saves), so the version stays 1 and both
	// ways keep working.
	RefreshRetryID string `json:"refresh_retry_id,omitempty"`
	DeviceKey      []byte `json:"device_key_pkcs8,omitempty"`
}

var b64 = base64.RawURLEncoding

// FileProtection is how a FileStore protects its data key: a passphrase
// (PassphraseProtection) or a wrapping key (WrapKeyProtection).
type FileProtection struct {
	pw     []byte
	params keys.Argon2Params
	wk     *keys.WrappingKey
}

// PassphraseProtection protects the state with a passphrase through
// Argon2id (keys.DefaultArgon2Params). SECURITY: the file is only as strong
// as the passphrase against offline guessing.
func PassphraseProtection(passphrase []byte) (*FileProtection, error) {
	return PassphraseProtectionWithParams(passphrase, keys.DefaultArgon2Params)
}

// PassphraseProtectionWithParams is PassphraseProtection with explicit
// Argon2id costs for new files (reading accepts up to
// keys.DefaultArgon2Limits).
func PassphraseProtectionWithParams(passphrase []byte, p keys.Argon2Params) (*FileProtection, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("client: empty passphrase")
	}
	return &FileProtection{pw: append([]byte(nil), passphrase...), params: p}, nil
}

// WrapKeyProtection protects the state with a 32-byte wrapping key, e.g.
// one kept in a separate file or the platform's key store.
func WrapKeyProtection(w *keys.WrappingKey) (*FileProtection, error) {
	if w == nil {
		return nil, errors.New("client: nil wrapping key")
	}
	return &FileProtection{wk: w}, nil
}

func (p *FileProtection) wrap(k *keys.LocalKey) (string, error) {
	if p.wk != nil {
		return keys.WrapLocalPIE(k, p.wk, rand.Reader)
	}
	return keys.WrapLocalPassword(k, p.pw, p.params, rand.Reader)
}

func (p *FileProtection) unwrap(s string) (*keys.LocalKey, error) {
	if p.wk != nil {
		return keys.UnwrapLocalPIE(s, p.wk)
	}
	return keys.UnwrapLocalPassword(s, p.pw, keys.DefaultArgon2Limits)
}

// FileStore is a StateStore in one encrypted file, device key included. It
// accepts software device keys only (*ecdsa.PrivateKey on P-256,
// ed25519.PrivateKey); a hardware-backed key needs a store of its own (see
// the package documentation).
//
// Writes are atomic (temporary file, fsync, rename, fsync of the
// directory) and the file is created with mode 0600.
//
// Several processes (or several Clients) may share one state file. A
// Client reads the file again before it presents its refresh token and
// before it writes tokens (a refresh, a rename, a logout, the retry of a
// failed save, Close), and when the file holds a refresh token that the
// Client neither last saw there nor holds, another process wrote since: the
// Client takes the file's state (often with a fresh access token, so no
// refresh is needed) and neither presents nor writes back its own, older
// tokens. So a process that slept through another's refresh does not sign
// the device out once the server's grace window is over. The file keeps
// the refresh token's retry id with it (State.RefreshRetryID), and a
// Client that holds the same refresh token takes the id it finds there:
// a refresh that another process sent and whose answer was lost is
// repeated with its id, which the server answers with the successor even
// after the grace window.
//
// What is not guaranteed without a lock around whole runs (the hallpass
// CLI takes one on FILE.lock): two processes that refresh at the same time
// present the same refresh token, which the server answers with the same
// successor pair within its grace window (30 s by default), so both go on;
// but a process whose refresh is still on the wire while another
// refreshes twice presents a token two rotations old, which is reuse, and a
// write that lands between another process's re-read and write is lost
// (the file is not locked from the read to the write).
type FileStore struct {
	path string
	prot *FileProtection

	mu      sync.Mutex
	dek     *keys.LocalKey // cached data key
	wrapped string         // dek as stored in the file
}

// NewFileStore returns a store for the file at path (created on first
// Save), protected by prot.
func NewFileStore(path string, prot *FileProtection) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("client: empty state file path")
	}
	if prot == nil {
		return nil, errors.New("client: nil FileProtection")
	}
	return &FileStore{path: path, prot: prot}, nil
}

// Path returns the file's path.
func (s *FileStore) Path() string { return s.path }

// Load implements StateStore. A missing file is no state (nil, nil).
func (s *FileStore) Load(context.Context) (*State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sf, err := readStateFile(s.path)
	if err != nil || sf == nil {
		return nil, err
	}
	dek, err := s.dataKey(sf.Key)
	if err != nil {
		return nil, err
	}
	pt, err := openState(dek, sf)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	st, err := decodeState(pt)
	if err != nil {
		return nil, err
	}
	s.dek, s.wrapped = dek, sf.Key
	return st, nil
}

// readStateFile reads and checks the header of the state file at path; a missing file is (nil, nil).
func readStateFile(path string) (*stateFile, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	f.Close()
	if err != nil {
		return nil, err
	}
	if len(raw) > maxStateFile {
		return nil, fmt.Errorf("%w: file too large", ErrStateDecrypt)
	}
	var sf stateFile
	if err := json.Unmarshal(raw, &sf); err != nil || sf.Format != stateFormat {
		return nil, fmt.Errorf("%w: not a hallpass client state file", ErrStateDecrypt)
	}
	if sf.Version != stateVersion {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrStateDecrypt, sf.Version)
	}
	return &sf, nil
}

// dataKey unwraps the data key stored as wrapped, or returns the cached one when it is the same. s.mu must be held.
func (s *FileStore) dataKey(wrapped string) (*keys.LocalKey, error) {
	if s.dek != nil && wrapped == s.wrapped {
		return s.dek, nil
	}
	dek, err := s.prot.unwrap(wrapped)
	if err != nil {
		if errors.Is(err, keys.ErrParams) {
			return nil, fmt.Errorf("%w: %w", ErrStateDecrypt, err)
		}
		return nil, ErrStateDecrypt
	}
	return dek, nil
}

// openState decrypts and authenticates the ciphertext of sf under dek; the caller clears the plaintext.
func openState(dek *keys.LocalKey, sf *stateFile) ([]byte, error) {
	nonce, err1 := b64.DecodeString(sf.Nonce)
	ct, err2 := b64.DecodeString(sf.Ciphertext)
	if err1 != nil || err2 != nil || len(nonce) != chacha20poly1305.NonceSizeX {
		return nil, ErrStateDecrypt
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce, ct, stateAAD(sf.Key))
	if err != nil {
		return nil, ErrStateDecrypt
	}
	return pt, nil
}

// decodeState parses the plaintext pt and checks that its device key matches its thumbprint.
func decodeState(pt []byte) (*State, error) {
	var sj stateJSON
	if err := json.Unmarshal(pt, &sj); err != nil {
		return nil, fmt.Errorf("%w: bad content", ErrStateDecrypt)
	}
	defer clear(sj.DeviceKey)
	st := &State{
		ServerURL:         sj.ServerURL,
		AccountID:         sj.AccountID,
		DeviceID:          sj.DeviceID,
		Username:          sj.Username,
		KeyThumbprint:     sj.KeyThumbprint,
		AccessToken:       sj.AccessToken,
		AccessTokenExpiry: sj.AccessTokenExpiry,
		RefreshToken:      sj.RefreshToken,
		RefreshRetryID:    sj.RefreshRetryID,
	}
	if len(sj.DeviceKey) > 0 {
		k, err := parseDeviceKey(sj.DeviceKey)
		if err != nil {
			return nil, err
		}
		jkt, err := thumbprint(k)
		if err != nil || jkt != st.KeyThumbprint {
			return nil, fmt.Errorf("%w: stored key does not match its thumbprint", ErrStateDecrypt)
		}
		st.DeviceKey = k
	}
	return st, nil
}

// Save implements StateStore.
func (s *FileStore) Save(_ context.Context, st *State) error {
	if st == nil {
		return errors.New("client: nil state")
	}
	pt, err := encodeState(st)
	if err != nil {
		return err
	}
	defer clear(pt)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureDataKey(); err != nil {
		return err
	}
	out, err := s.seal(pt)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, append(out, '\n'))
}

// encodeState is the plaintext of st, its device key as PKCS #8 and its thumbprint filled in when empty.
func encodeState(st *State) ([]byte, error) {
	sj := stateJSON{
		ServerURL:         st.ServerURL,
		AccountID:         st.AccountID,
		DeviceID:          st.DeviceID,
		Username:          st.Username,
		KeyThumbprint:     st.KeyThumbprint,
		AccessToken:       st.AccessToken,
		AccessTokenExpiry: st.AccessTokenExpiry,
		RefreshToken:      st.RefreshToken,
		RefreshRetryID:    st.RefreshRetryID,
	}
	if st.DeviceKey != nil {
		der, err := marshalDeviceKey(st.DeviceKey)
		if err != nil {
			return nil, err
		}
		defer clear(der)
		sj.DeviceKey = der
		if sj.KeyThumbprint == "" {
			if sj.KeyThumbprint, err = thumbprint(st.DeviceKey); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(sj)
}

// ensureDataKey makes and wraps the data key on the first save. s.mu must be held.
func (s *FileStore) ensureDataKey() error {
	if s.dek != nil {
		return nil
	}
	dek, err := keys.GenerateLocalKey(rand.Reader)
	if err != nil {
		return err
	}
	w, err := s.prot.wrap(dek)
	if err != nil {
		return fmt.Errorf("client: wrapping the state key: %w", err)
	}
	s.dek, s.wrapped = dek, w
	return nil
}

// seal encrypts pt under the data key with a fresh nonce and encodes the file. s.mu must be held.
func (s *FileStore) seal(pt []byte) ([]byte, error) {
	aead, err := newAEAD(s.dek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	return json.Marshal(stateFile{
		Format:     stateFormat,
		Version:    stateVersion,
		Key:        s.wrapped,
		Nonce:      b64.EncodeToString(nonce),
		Ciphertext: b64.EncodeToString(aead.Seal(nil, nonce, pt, stateAAD(s.wrapped))),
	})
}

func stateAAD(wrapped string) []byte {
	return []byte(fmt.Sprintf("%s.v%d\n%s", stateFormat, stateVersion, wrapped))
}

func newAEAD(k *keys.LocalKey) (interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}, error) {
	b := k.UnsafeBytes()
	defer clear(b)
	return chacha20poly1305.NewX(b)
}

func marshalDeviceKey(k crypto.Signer) ([]byte, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, ErrUnsupportedKey
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, ErrUnsupportedKey
		}
		return x509.MarshalPKCS8PrivateKey(k)
	}
	return nil, fmt.Errorf("%w: FileStore keeps software keys only (*ecdsa.PrivateKey, ed25519.PrivateKey)", ErrUnsupportedKey)
}

func parseDeviceKey(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: bad device key", ErrStateDecrypt)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%w: stored device key has an unsupported type", ErrStateDecrypt)
}

// writeFileAtomic replaces path with data, mode 0600: a reader (or a crash)
// sees the old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // durability of the rename; not all systems support it
		d.Close()
	}
	return nil
}
