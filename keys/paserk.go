package keys

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// PASERK type prefixes for version 4.
const (
	prefixPublic     = "k4.public."
	prefixSecret     = "k4.secret."
	prefixLocal      = "k4.local."
	prefixPID        = "k4.pid."
	prefixSID        = "k4.sid."
	prefixLID        = "k4.lid."
	prefixSecretPW   = "k4.secret-pw."
	prefixLocalPW    = "k4.local-pw."
	prefixSecretWrap = "k4.secret-wrap.pie."
	prefixLocalWrap  = "k4.local-wrap.pie."
)

// maxPASERKLen bounds every PASERK string we decode; the longest k4 type
// (secret-pw) is 216 characters.
const maxPASERKLen = 512

var b64 = base64.RawURLEncoding

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// decodeBody checks the prefix and decodes the base64url body, which must
// decode to exactly n bytes (n < 0: any length up to the PASERK size limit).
func decodeBody(s, prefix string, n int) ([]byte, error) {
	if !strings.HasPrefix(s, prefix) {
		return nil, ErrWrongType
	}
	if len(s) > maxPASERKLen {
		return nil, ErrMalformed
	}
	body := s[len(prefix):]
	// RawURLEncoding accepts no padding and, with Strict, no trailing bits,
	// but encoding/base64 skips CR and LF anywhere in its input even in
	// Strict mode: reject them, so that one key has exactly one encoding and
	// a returned KeyID never carries a line break.
	if strings.ContainsAny(body, "\r\n") {
		return nil, ErrMalformed
	}
	raw, err := b64.Strict().DecodeString(body)
	if err != nil {
		return nil, ErrMalformed
	}
	if n >= 0 && len(raw) != n {
		return nil, ErrMalformed
	}
	return raw, nil
}

// paserkID computes the PASERK id of type prefix (k4.pid./k4.sid./k4.lid.)
// over the full PASERK string of the key: BLAKE2b-264(prefix || paserk).
func paserkID(prefix, paserk string) KeyID {
	h, _ := blake2b.New(33, nil) // only fails for bad sizes or long keys
	h.Write([]byte(prefix))
	h.Write([]byte(paserk))
	return KeyID(prefix + b64.EncodeToString(h.Sum(nil)))
}

func publicID(k []byte) KeyID { return paserkID(prefixPID, prefixPublic+b64.EncodeToString(k)) }
func localID(l *LocalKey) KeyID {
	return paserkID(prefixLID, prefixLocal+b64.EncodeToString(l.k[:]))
}

// PASERK returns the k4.public PASERK string of p.
func (p PublicKey) PASERK() string { return prefixPublic + b64.EncodeToString(p.k) }

// MarshalText implements encoding.TextMarshaler (k4.public).
func (p PublicKey) MarshalText() ([]byte, error) {
	if p.IsZero() {
		return nil, ErrInvalidKey
	}
	return []byte(p.PASERK()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only k4.public.
func (p *PublicKey) UnmarshalText(b []byte) error {
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

// ParsePublicKey decodes a k4.public PASERK string.
func ParsePublicKey(paserk string) (PublicKey, error) {
	raw, err := decodeBody(paserk, prefixPublic, 32)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKeyFromEd25519(raw)
}

// ParseKeyID checks that s is a well-formed k4 key id of the given kind
// ("pid", "lid" or "sid") and returns it typed.
func ParseKeyID(s, kind string) (KeyID, error) {
	var prefix string
	switch kind {
	case "pid":
		prefix = prefixPID
	case "lid":
		prefix = prefixLID
	case "sid":
		prefix = prefixSID
	default:
		return "", ErrWrongType
	}
	if _, err := decodeBody(s, prefix, 33); err != nil {
		return "", err
	}
	return KeyID(s), nil
}

// SecretID returns the k4.sid of the key.
func (s *SecretKey) SecretID() KeyID { return paserkID(prefixSID, s.PlaintextPASERK()) }

// PlaintextPASERK returns the unencrypted k4.secret PASERK string.
//
// SECURITY: the result is the secret key. Store it only wrapped
// (WrapSecretPassword, WrapSecretPIE) outside of explicit development setups.
func (s *SecretKey) PlaintextPASERK() string { return prefixSecret + b64.EncodeToString(s.k) }

// ParseSecretKey decodes an unencrypted k4.secret PASERK string. The public
// half embedded in the key must match its seed.
func ParseSecretKey(paserk string) (*SecretKey, error) {
	raw, err := decodeBody(paserk, prefixSecret, 64)
	if err != nil {
		return nil, err
	}
	return SecretKeyFromEd25519(raw)
}

// PlaintextPASERK returns the unencrypted k4.local PASERK string.
//
// SECURITY: the result is the secret key; store it only wrapped.
func (l *LocalKey) PlaintextPASERK() string { return prefixLocal + b64.EncodeToString(l.k[:]) }

// ParseLocalKey decodes an unencrypted k4.local PASERK string.
func ParseLocalKey(paserk string) (*LocalKey, error) {
	raw, err := decodeBody(paserk, prefixLocal, 32)
	if err != nil {
		return nil, err
	}
	var b [32]byte
	copy(b[:], raw)
	return newLocalKey(b), nil
}
