package keys

import (
	"crypto/subtle"
	"fmt"
	"io"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20"
)

// PASERK PIE key wrapping, version 4 (k4.local-wrap.pie, k4.secret-wrap.pie).
// Layout of the decoded body: tag(32) || nonce(32) || c, where
//
//	x   = BLAKE2b-448(key=wk, 0x80 || nonce); Ek = x[:32], n2 = x[32:]
//	Ak  = BLAKE2b-256(key=wk, 0x81 || nonce)
//	c   = XChaCha20(key=Ek, nonce=n2, ptk)
//	tag = BLAKE2b-256(key=Ak, header || nonce || c)
const (
	pieTagLen   = 32
	pieNonceLen = 32
	pieOverhead = pieTagLen + pieNonceLen
)

// pieKeys derives Ek, the XChaCha20 nonce n2 and Ak from the wrapping key
// and the stored nonce.
func pieKeys(w *WrappingKey, nonce []byte) (ek [32]byte, n2 []byte, ak [32]byte) {
	h, _ := blake2b.New(32+chacha20.NonceSizeX, w.k[:]) // fixed, valid sizes
	h.Write([]byte{0x80})
	h.Write(nonce)
	x := h.Sum(nil)
	copy(ek[:], x[:32])
	n2 = x[32:]

	h, _ = blake2b.New256(w.k[:])
	h.Write([]byte{0x81})
	h.Write(nonce)
	h.Sum(ak[:0])
	clear(x[:32])
	return ek, n2, ak
}

func pieTag(ak *[32]byte, header string, nonceAndC []byte) []byte {
	h, _ := blake2b.New256(ak[:])
	h.Write([]byte(header))
	h.Write(nonceAndC)
	return h.Sum(nil)
}

func wrapPIE(h string, ptk []byte, w *WrappingKey, rand io.Reader) (string, error) {
	if w == nil {
		return "", ErrInvalidKey
	}
	out := make([]byte, pieOverhead, pieOverhead+len(ptk))
	nonce := out[pieTagLen:]
	if _, err := io.ReadFull(randOrDefault(rand), nonce); err != nil {
		return "", fmt.Errorf("keys: wrap: reading nonce: %w", err)
	}
	ek, n2, ak := pieKeys(w, nonce)
	out = append(out, xchacha20(&ek, n2, ptk)...)
	copy(out[:pieTagLen], pieTag(&ak, h, out[pieTagLen:]))
	clear(ek[:])
	clear(ak[:])
	return h + b64.EncodeToString(out), nil
}

// unwrapPIE checks type and length, then the tag in constant time, and only
// then decrypts.
func unwrapPIE(h, paserk string, w *WrappingKey, ptkLen int) ([]byte, error) {
	raw, err := decodeBody(paserk, h, pieOverhead+ptkLen)
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, ErrInvalidKey
	}
	tag := raw[:pieTagLen]
	nonce := raw[pieTagLen:pieOverhead]
	c := raw[pieOverhead:]
	ek, n2, ak := pieKeys(w, nonce)
	defer clear(ek[:])
	ok := subtle.ConstantTimeCompare(pieTag(&ak, h, raw[pieTagLen:]), tag) == 1
	clear(ak[:])
	if !ok {
		return nil, ErrUnwrap
	}
	return xchacha20(&ek, n2, c), nil
}

// WrapSecretPIE encrypts k under the wrapping key w as a PASERK
// k4.secret-wrap.pie string, with a fresh nonce read from rand
// (crypto/rand.Reader when nil).
func WrapSecretPIE(k *SecretKey, w *WrappingKey, rand io.Reader) (string, error) {
	if k == nil || len(k.k) != 64 {
		return "", ErrInvalidKey
	}
	return wrapPIE(prefixSecretWrap, k.k, w, rand)
}

// UnwrapSecretPIE opens a PASERK k4.secret-wrap.pie string. A wrong wrapping
// key or any tampering gives ErrUnwrap; a wrapped key whose public half does
// not match its seed gives ErrInvalidKey.
func UnwrapSecretPIE(paserk string, w *WrappingKey) (*SecretKey, error) {
	ptk, err := unwrapPIE(prefixSecretWrap, paserk, w, 64)
	if err != nil {
		return nil, err
	}
	defer clear(ptk)
	return SecretKeyFromEd25519(ptk)
}

// WrapLocalPIE encrypts k under the wrapping key w as a PASERK
// k4.local-wrap.pie string; see WrapSecretPIE.
func WrapLocalPIE(k *LocalKey, w *WrappingKey, rand io.Reader) (string, error) {
	if k == nil || k.id == "" {
		return "", ErrInvalidKey
	}
	return wrapPIE(prefixLocalWrap, k.k[:], w, rand)
}

// UnwrapLocalPIE opens a PASERK k4.local-wrap.pie string; see
// UnwrapSecretPIE.
func UnwrapLocalPIE(paserk string, w *WrappingKey) (*LocalKey, error) {
	ptk, err := unwrapPIE(prefixLocalWrap, paserk, w, 32)
	if err != nil {
		return nil, err
	}
	var b [32]byte
	copy(b[:], ptk)
	clear(ptk)
	return newLocalKey(b), nil
}
