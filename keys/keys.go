package keys

import (
	"crypto"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"
)

// Sentinel errors. Messages never carry key material or the input string.
var (
	// ErrInvalidKey: the bytes are not a valid key of the expected kind.
	ErrInvalidKey = errors.New("keys: invalid key")
	// ErrWrongType: a PASERK string of another version or type was given
	// (for example k3.public where k4.public is expected).
	ErrWrongType = errors.New("keys: wrong PASERK type")
	// ErrMalformed: the PASERK string is not well formed.
	ErrMalformed = errors.New("keys: malformed PASERK")
	// ErrUnwrap: a wrapped key could not be opened (wrong password or wrapping
	// key, or tampered ciphertext). Deliberately one error for all causes.
	ErrUnwrap = errors.New("keys: cannot unwrap key")
	// ErrParams: stored Argon2id parameters exceed the configured limits.
	ErrParams = errors.New("keys: password hashing parameters out of bounds")
)

// KeyID is a PASERK key identifier: "k4.pid..." for public keys, "k4.lid..."
// for symmetric keys, "k4.sid..." for secret keys. It is public information.
type KeyID string

func (id KeyID) String() string { return string(id) }

// PublicKey is an Ed25519 public key for PASETO v4.public.
// The zero value is invalid; obtain one from ParsePublicKey,
// PublicKeyFromEd25519 or (*SecretKey).PublicKey.
type PublicKey struct {
	k  ed25519.PublicKey
	id KeyID
}

// PublicKeyFromEd25519 validates and wraps an Ed25519 public key.
func PublicKeyFromEd25519(pub ed25519.PublicKey) (PublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return PublicKey{}, ErrInvalidKey
	}
	k := make(ed25519.PublicKey, ed25519.PublicKeySize)
	copy(k, pub)
	return PublicKey{k: k, id: publicID(k)}, nil
}

// IsZero reports whether p is the invalid zero value.
func (p PublicKey) IsZero() bool { return len(p.k) != ed25519.PublicKeySize }

// ID returns the key's PASERK id (k4.pid...).
func (p PublicKey) ID() KeyID { return p.id }

// Ed25519 returns a copy of the raw public key.
func (p PublicKey) Ed25519() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), p.k...)
}

// Verify reports whether sig is a valid Ed25519 signature of msg by p.
// It returns false for the zero value instead of panicking.
func (p PublicKey) Verify(msg, sig []byte) bool {
	if p.IsZero() || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(p.k, msg, sig)
}

// Equal reports whether p and q are the same key.
func (p PublicKey) Equal(q PublicKey) bool {
	return !p.IsZero() && subtle.ConstantTimeCompare(p.k, q.k) == 1
}

func (p PublicKey) String() string { return "keys.PublicKey(" + string(p.id) + ")" }

// SecretKey is an Ed25519 signing key. It implements crypto.Signer so that a
// hardware or KMS-backed signer can take its place where a crypto.Signer is
// accepted. It is not comparable with ==; use Equal. String and LogValue
// print only the public key id.
type SecretKey struct {
	_   [0]func() // not comparable
	k   ed25519.PrivateKey
	pub PublicKey
}

// GenerateSecretKey creates a new Ed25519 signing key from rand
// (crypto/rand.Reader when nil).
func GenerateSecretKey(rand io.Reader) (*SecretKey, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("keys: generate: %w", err)
	}
	return SecretKeyFromEd25519(priv)
}

// SecretKeyFromEd25519 validates and wraps a 64-byte Ed25519 private key. The
// public half stored in the key must match the seed.
func SecretKeyFromEd25519(priv ed25519.PrivateKey) (*SecretKey, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, ErrInvalidKey
	}
	derived := ed25519.NewKeyFromSeed(priv.Seed())
	if subtle.ConstantTimeCompare(derived[32:], priv[32:]) != 1 {
		return nil, ErrInvalidKey
	}
	pub, err := PublicKeyFromEd25519(derived.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &SecretKey{k: derived, pub: pub}, nil
}

// Public implements crypto.Signer; it returns an ed25519.PublicKey.
func (s *SecretKey) Public() crypto.PublicKey { return s.pub.Ed25519() }

// PublicKey returns the typed public half.
func (s *SecretKey) PublicKey() PublicKey { return s.pub }

// ID returns the PASERK id of the public half (k4.pid...): the kid that
// tokens signed by s carry.
func (s *SecretKey) ID() KeyID { return s.pub.id }

// Sign implements crypto.Signer. opts must be crypto.Hash(0) (pure Ed25519).
func (s *SecretKey) Sign(rand io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() != crypto.Hash(0) {
		return nil, errors.New("keys: Ed25519 signs the message itself; pass crypto.Hash(0)")
	}
	return ed25519.Sign(s.k, msg), nil
}

// Equal reports in constant time whether s and o hold the same key.
func (s *SecretKey) Equal(o *SecretKey) bool {
	if s == nil || o == nil {
		return false
	}
	return subtle.ConstantTimeCompare(s.k, o.k) == 1
}

func (s SecretKey) String() string { return "keys.SecretKey(" + string(s.pub.id) + ")" }

// GoString keeps %#v from printing the key bytes.
func (s SecretKey) GoString() string { return s.String() }

// LogValue implements slog.LogValuer: only the key id is logged.
func (s SecretKey) LogValue() slog.Value { return slog.StringValue(string(s.pub.id)) }

// Format implements fmt.Formatter. Without it, verbs that skip String
// (%d, %o, %b, ...) would print the key bytes.
func (s SecretKey) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// formatRedacted prints str (the redacted String form) whatever the verb.
func formatRedacted(f fmt.State, verb rune, str string) {
	if verb == 'q' {
		str = strconv.Quote(str)
	}
	io.WriteString(f, str)
}

// LocalKey is a 32-byte symmetric key for PASETO v4.local (refresh tokens).
// Not comparable; use Equal. String and LogValue print only its k4.lid.
type LocalKey struct {
	_  [0]func()
	k  [32]byte
	id KeyID
}

// GenerateLocalKey creates a random symmetric key from rand
// (crypto/rand.Reader when nil).
func GenerateLocalKey(rand io.Reader) (*LocalKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(randOrDefault(rand), b[:]); err != nil {
		return nil, fmt.Errorf("keys: generate: %w", err)
	}
	return newLocalKey(b), nil
}

func newLocalKey(b [32]byte) *LocalKey {
	k := &LocalKey{k: b}
	k.id = localID(k)
	return k
}

// ID returns the PASERK id (k4.lid...).
func (l *LocalKey) ID() KeyID { return l.id }

// Equal reports in constant time whether l and o hold the same key.
func (l *LocalKey) Equal(o *LocalKey) bool {
	if l == nil || o == nil {
		return false
	}
	return subtle.ConstantTimeCompare(l.k[:], o.k[:]) == 1
}

// UnsafeBytes returns a copy of the raw key for a PASETO v4.local
// implementation.
//
// SECURITY: the result is secret; never log, store or send it.
func (l *LocalKey) UnsafeBytes() []byte { return append([]byte(nil), l.k[:]...) }

func (l LocalKey) String() string   { return "keys.LocalKey(" + string(l.id) + ")" }
func (l LocalKey) GoString() string { return l.String() }

// LogValue implements slog.LogValuer: only the key id is logged.
func (l LocalKey) LogValue() slog.Value { return slog.StringValue(string(l.id)) }

// Format implements fmt.Formatter: no verb prints the key bytes.
func (l LocalKey) Format(f fmt.State, verb rune) { formatRedacted(f, verb, l.String()) }

// LocalKeyEntry is one stored refresh-token key with its times, as the
// key ring stores (keys/filestore, keys/redisring) keep them: a list,
// current (newest) first, then retired keys kept until no refresh token
// sealed under them can still be valid.
type LocalKeyEntry struct {
	Key     *LocalKey
	Created time.Time
	Retired time.Time // zero for the current key
}

// WrappingKey is a 32-byte key that wraps other keys at rest
// (PASERK k4.local-wrap.pie / k4.secret-wrap.pie).
type WrappingKey struct {
	_ [0]func()
	k [32]byte
}

// WrappingKeyFromBytes validates a 32-byte wrapping key.
func WrappingKeyFromBytes(b []byte) (*WrappingKey, error) {
	if len(b) != 32 {
		return nil, ErrInvalidKey
	}
	w := &WrappingKey{}
	copy(w.k[:], b)
	return w, nil
}

// GenerateWrappingKey creates a random wrapping key.
func GenerateWrappingKey(rand io.Reader) (*WrappingKey, error) {
	w := &WrappingKey{}
	if _, err := io.ReadFull(randOrDefault(rand), w.k[:]); err != nil {
		return nil, fmt.Errorf("keys: generate: %w", err)
	}
	return w, nil
}

// Equal reports in constant time whether w and o are the same key.
func (w *WrappingKey) Equal(o *WrappingKey) bool {
	if w == nil || o == nil {
		return false
	}
	return subtle.ConstantTimeCompare(w.k[:], o.k[:]) == 1
}

// UnsafeBytes returns a copy of the raw wrapping key, to write it to a file.
//
// SECURITY: the result is secret.
func (w *WrappingKey) UnsafeBytes() []byte { return append([]byte(nil), w.k[:]...) }

// UnsafeDeriveKey returns a 32-byte key derived from w for one purpose:
// HKDF-SHA-256 (RFC 5869) with w as the input key, no salt, and the info
// "hallpass/" + purpose. Keys for different purposes are independent, and
// none reveals w or opens what w wraps. purpose names the use and its
// version ("revocation/entry-mac/v1"); it must not be empty.
//
// SECURITY: the result is secret; its holder can do whatever the purpose
// allows (for a MAC key: forge what it authenticates). Keep it in an
// unexported field of a type of its own.
func (w *WrappingKey) UnsafeDeriveKey(purpose string) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("keys: a derived key needs a purpose")
	}
	return hkdf.Key(sha256.New, w.k[:], nil, "hallpass/"+purpose, 32)
}

func (w WrappingKey) String() string       { return "keys.WrappingKey(redacted)" }
func (w WrappingKey) GoString() string     { return w.String() }
func (w WrappingKey) LogValue() slog.Value { return slog.StringValue("redacted") }

// Format implements fmt.Formatter: no verb prints the key bytes.
func (w WrappingKey) Format(f fmt.State, verb rune) { formatRedacted(f, verb, w.String()) }
