package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Pepper is a 32-byte server secret that keys the digests of link and
// recovery codes: Digest is HMAC-SHA-256 under it, so a copy of the
// account store alone cannot test guesses against a stored digest. It is
// kept in the key ring beside the refresh-token keys and wrapped at rest
// exactly like them: its stored form is a k4.local key (UnsafeLocalKey), in
// a file or document of its own, so that it is never taken for a
// refresh-token key. Not comparable; use Equal. String and LogValue print
// only its id.
type Pepper struct {
	_ [0]func()
	l *LocalKey
}

// GeneratePepper creates a random pepper from rand (crypto/rand.Reader
// when nil).
func GeneratePepper(rand io.Reader) (*Pepper, error) {
	l, err := GenerateLocalKey(rand)
	if err != nil {
		return nil, err
	}
	return &Pepper{l: l}, nil
}

// PepperFromLocalKey is the pepper whose stored form is k, for the key
// ring stores that read it back (see UnsafeLocalKey).
func PepperFromLocalKey(k *LocalKey) (*Pepper, error) {
	if k == nil || k.id == "" {
		return nil, ErrInvalidKey
	}
	return &Pepper{l: k}, nil
}

// UnsafeLocalKey returns the pepper's stored form, a k4.local key, for a
// key ring store to wrap it as it wraps refresh-token keys.
//
// SECURITY: the result is the pepper itself. Store it only wrapped, in a
// place of its own: never hand it to a refresh-token codec.
func (p *Pepper) UnsafeLocalKey() *LocalKey { return p.l }

// ID returns the pepper's id, the k4.lid of its stored form: a one-way
// hash, safe to log.
func (p *Pepper) ID() KeyID { return p.l.id }

// Equal reports in constant time whether p and o are the same pepper.
func (p *Pepper) Equal(o *Pepper) bool {
	if p == nil || o == nil {
		return false
	}
	return p.l.Equal(o.l)
}

// Digest returns HMAC-SHA-256(pepper, msg). Callers put a label in msg
// that says what is digested (a link code, a recovery code), so that one
// kind of digest can never match another.
func (p *Pepper) Digest(msg []byte) []byte {
	m := hmac.New(sha256.New, p.l.k[:])
	m.Write(msg)
	return m.Sum(nil)
}

// id is the pepper's id, or "" for the zero Pepper (never made by this
// package, but printable).
func (p Pepper) id() string {
	if p.l == nil {
		return ""
	}
	return string(p.l.id)
}

func (p Pepper) String() string   { return "keys.Pepper(" + p.id() + ")" }
func (p Pepper) GoString() string { return p.String() }

// LogValue implements slog.LogValuer: only the pepper's id is logged.
func (p Pepper) LogValue() slog.Value { return slog.StringValue(p.id()) }

// Format implements fmt.Formatter: no verb prints the pepper's bytes.
func (p Pepper) Format(f fmt.State, verb rune) { formatRedacted(f, verb, p.String()) }

// PepperEntry is one stored pepper with its times, as the key ring stores
// keep them: a list, current (newest) first, then the older peppers. Older
// peppers are kept for good, never pruned: a recovery code digested under
// one must still match, whenever it is used.
type PepperEntry struct {
	Pepper  *Pepper
	Created time.Time
	Retired time.Time // when a newer pepper replaced it; zero for the current one
}
