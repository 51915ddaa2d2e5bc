package keys

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20"
)

// PASERK PBKW (k4.local-pw, k4.secret-pw): Argon2id derives a pre-key from
// the password; BLAKE2b splits it into an XChaCha20 key and a BLAKE2b-MAC
// key. Layout of the decoded body:
//
//	salt(16) || be64(memory bytes) || be32(time) || be32(parallelism) ||
//	nonce(24) || edk || tag(32)
//
// with tag = BLAKE2b-256(key=Ak, header || everything before the tag).
const (
	pwSaltLen   = 16
	pwParamsLen = 8 + 4 + 4
	pwNonceLen  = chacha20.NonceSizeX
	pwTagLen    = 32
	pwOverhead  = pwSaltLen + pwParamsLen + pwNonceLen + pwTagLen

	// Argon2 needs at least 8 KiB of memory per lane; x/crypto/argon2 takes
	// the lane count as a uint8 and the memory in KiB as a uint32.
	argon2MinKiBPerLane = 8
	argon2MaxLanes      = math.MaxUint8
)

// Argon2Params are the Argon2id costs used to wrap a key with a password.
// They are stored in the clear in the PASERK string and bound by its MAC.
// The zero value means DefaultArgon2Params.
type Argon2Params struct {
	// Memory in bytes (not KiB, as in libsodium's memlimit and the PASERK
	// encoding); a multiple of 1024, at least 8 KiB per lane.
	Memory uint64
	// Time is the number of passes (libsodium's opslimit); at least 1.
	Time uint32
	// Parallelism is the number of lanes; at least 1. Keep it at 1 when the
	// string must also open with libsodium-based implementations, which
	// support only one lane.
	Parallelism uint32
}

// DefaultArgon2Params: 64 MiB, 3 passes, 1 lane. Above the OWASP Password
// Storage Cheat Sheet minimum for Argon2id (19 MiB, 2 passes) and
// libsodium's "interactive" level; one unwrap costs a few hundred
// milliseconds at process start.
var DefaultArgon2Params = Argon2Params{Memory: 64 << 20, Time: 3, Parallelism: 1}

// Argon2Limits caps the Argon2id costs that a stored k4.local-pw or
// k4.secret-pw string may demand, so that a planted or corrupted string
// cannot make the process allocate gigabytes or spin for minutes. Costs above
// a limit fail with ErrParams before any hashing. The zero value means
// DefaultArgon2Limits.
type Argon2Limits struct {
	MaxMemory      uint64 // bytes
	MaxTime        uint32
	MaxParallelism uint32
}

// DefaultArgon2Limits: at most 1 GiB, 10 passes and 16 lanes.
var DefaultArgon2Limits = Argon2Limits{MaxMemory: 1 << 30, MaxTime: 10, MaxParallelism: 16}

// valid reports whether p can be computed at all: Argon2's own minimums and
// what golang.org/x/crypto/argon2 can represent.
func (p Argon2Params) valid() bool {
	return p.Time >= 1 &&
		p.Parallelism >= 1 && p.Parallelism <= argon2MaxLanes &&
		p.Memory%1024 == 0 &&
		p.Memory/1024 <= math.MaxUint32 &&
		p.Memory/1024 >= argon2MinKiBPerLane*uint64(p.Parallelism)
}

func (l Argon2Limits) allow(p Argon2Params) bool {
	if l == (Argon2Limits{}) {
		l = DefaultArgon2Limits
	}
	return p.Memory <= l.MaxMemory && p.Time <= l.MaxTime && p.Parallelism <= l.MaxParallelism
}

// pwKDF derives the PBKW pre-key. Production code passes argon2idKey; it
// is a parameter rather than a package variable so that tests can memoise
// the official 256 MiB vectors without mutable global state.
type pwKDF func(password, salt []byte, p Argon2Params) []byte

// argon2idKey is the PBKW pre-key derivation. p must be valid.
func argon2idKey(password, salt []byte, p Argon2Params) []byte {
	return argon2.IDKey(password, salt, p.Time, uint32(p.Memory/1024), uint8(p.Parallelism), 32)
}

// pwKeys derives the encryption key Ek = BLAKE2b-256(0xFF || k) and the
// authentication key Ak = BLAKE2b-256(0xFE || k) from the pre-key k.
func pwKeys(k []byte) (ek, ak [32]byte) {
	buf := make([]byte, 1+len(k))
	copy(buf[1:], k)
	buf[0] = 0xFF
	ek = blake2b.Sum256(buf)
	buf[0] = 0xFE
	ak = blake2b.Sum256(buf)
	clear(buf)
	return ek, ak
}

// pwTag computes BLAKE2b-256(key=ak, header || body) where body is the
// decoded PASERK without its tag.
func pwTag(ak *[32]byte, header string, body []byte) []byte {
	h, _ := blake2b.New256(ak[:]) // fails only for keys over 64 bytes
	h.Write([]byte(header))
	h.Write(body)
	return h.Sum(nil)
}

// xchacha20 XORs msg with the XChaCha20 key stream (counter 0), as
// libsodium's crypto_stream_xchacha20_xor.
func xchacha20(key *[32]byte, nonce, msg []byte) []byte {
	c, err := chacha20.NewUnauthenticatedCipher(key[:], nonce)
	if err != nil {
		panic("keys: xchacha20: " + err.Error()) // sizes are constants
	}
	out := make([]byte, len(msg))
	c.XORKeyStream(out, msg)
	return out
}

// wrapPassword implements PBKW encryption for header h.
func wrapPassword(h string, ptk, password []byte, p Argon2Params, rand io.Reader) (string, error) {
	if p == (Argon2Params{}) {
		p = DefaultArgon2Params
	}
	if !p.valid() {
		return "", ErrParams
	}
	out := make([]byte, pwSaltLen+pwParamsLen+pwNonceLen, pwOverhead+len(ptk))
	salt := out[:pwSaltLen]
	nonce := out[pwSaltLen+pwParamsLen:]
	r := randOrDefault(rand)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("keys: wrap: reading salt: %w", err)
	}
	if _, err := io.ReadFull(r, nonce); err != nil {
		return "", fmt.Errorf("keys: wrap: reading nonce: %w", err)
	}
	params := out[pwSaltLen : pwSaltLen+pwParamsLen]
	binary.BigEndian.PutUint64(params[0:8], p.Memory)
	binary.BigEndian.PutUint32(params[8:12], p.Time)
	binary.BigEndian.PutUint32(params[12:16], p.Parallelism)

	k := argon2idKey(password, salt, p)
	ek, ak := pwKeys(k)
	clear(k)
	out = append(out, xchacha20(&ek, nonce, ptk)...)
	out = append(out, pwTag(&ak, h, out)...)
	clear(ek[:])
	clear(ak[:])
	return h + b64.EncodeToString(out), nil
}

// unwrapPassword implements PBKW decryption for header h and a plaintext key
// of ptkLen bytes. The order matters: type, length and cost limits are
// checked before Argon2 runs, and the tag before anything is decrypted.
func unwrapPassword(h, paserk string, password []byte, lim Argon2Limits, ptkLen int, kdf pwKDF) ([]byte, error) {
	raw, err := decodeBody(paserk, h, pwOverhead+ptkLen)
	if err != nil {
		return nil, err
	}
	salt := raw[:pwSaltLen]
	params := raw[pwSaltLen : pwSaltLen+pwParamsLen]
	nonce := raw[pwSaltLen+pwParamsLen : pwSaltLen+pwParamsLen+pwNonceLen]
	edk := raw[pwSaltLen+pwParamsLen+pwNonceLen : len(raw)-pwTagLen]
	tag := raw[len(raw)-pwTagLen:]
	p := Argon2Params{
		Memory:      binary.BigEndian.Uint64(params[0:8]),
		Time:        binary.BigEndian.Uint32(params[8:12]),
		Parallelism: binary.BigEndian.Uint32(params[12:16]),
	}
	if !p.valid() || !lim.allow(p) {
		return nil, ErrParams
	}

	k := kdf(password, salt, p)
	ek, ak := pwKeys(k)
	clear(k)
	defer clear(ek[:])
	ok := subtle.ConstantTimeCompare(pwTag(&ak, h, raw[:len(raw)-pwTagLen]), tag) == 1
	clear(ak[:])
	if !ok {
		return nil, ErrUnwrap
	}
	return xchacha20(&ek, nonce, edk), nil
}

// WrapSecretPassword encrypts k under password as a PASERK k4.secret-pw
// string, with Argon2id costs p (the zero value means DefaultArgon2Params)
// and a fresh salt and nonce read from rand (crypto/rand.Reader when nil).
// Invalid costs give ErrParams.
//
// SECURITY: the string is only as strong as the password against an
// offline guessing attack; use a long random passphrase.
func WrapSecretPassword(k *SecretKey, password []byte, p Argon2Params, rand io.Reader) (string, error) {
	if k == nil || len(k.k) != 64 {
		return "", ErrInvalidKey
	}
	return wrapPassword(prefixSecretPW, k.k, password, p, rand)
}

// UnwrapSecretPassword opens a PASERK k4.secret-pw string. Costs beyond lim
// (the zero value means DefaultArgon2Limits) give ErrParams without hashing;
// a wrong password or any tampering gives ErrUnwrap; a wrapped key whose
// public half does not match its seed gives ErrInvalidKey.
func UnwrapSecretPassword(paserk string, password []byte, lim Argon2Limits) (*SecretKey, error) {
	return unwrapSecretPassword(paserk, password, lim, argon2idKey)
}

func unwrapSecretPassword(paserk string, password []byte, lim Argon2Limits, kdf pwKDF) (*SecretKey, error) {
	ptk, err := unwrapPassword(prefixSecretPW, paserk, password, lim, 64, kdf)
	if err != nil {
		return nil, err
	}
	defer clear(ptk)
	return SecretKeyFromEd25519(ptk)
}

// WrapLocalPassword encrypts k under password as a PASERK k4.local-pw
// string; see WrapSecretPassword.
func WrapLocalPassword(k *LocalKey, password []byte, p Argon2Params, rand io.Reader) (string, error) {
	if k == nil || k.id == "" {
		return "", ErrInvalidKey
	}
	return wrapPassword(prefixLocalPW, k.k[:], password, p, rand)
}

// UnwrapLocalPassword opens a PASERK k4.local-pw string; see
// UnwrapSecretPassword.
func UnwrapLocalPassword(paserk string, password []byte, lim Argon2Limits) (*LocalKey, error) {
	return unwrapLocalPassword(paserk, password, lim, argon2idKey)
}

func unwrapLocalPassword(paserk string, password []byte, lim Argon2Limits, kdf pwKDF) (*LocalKey, error) {
	ptk, err := unwrapPassword(prefixLocalPW, paserk, password, lim, 32, kdf)
	if err != nil {
		return nil, err
	}
	var b [32]byte
	copy(b[:], ptk)
	clear(ptk)
	return newLocalKey(b), nil
}
