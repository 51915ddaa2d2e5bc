package token

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/hallpass/hallpass/keys"
)

// HeaderV4Public is the header of every token this package reads or writes.
const HeaderV4Public = "v4.public."

// MaxFooterSize bounds the decoded footer that UnsafeFooter and
// UnsafeParseFooterKid read before any signature is checked. Our footer,
// {"kid":"k4.pid..."}, is 61 bytes.
const MaxFooterSize = 256

var b64 = base64.RawURLEncoding

// PAE is PASETO's pre-authentication encoding: the number of pieces, then
// each piece, each preceded by its length as a little-endian uint64 with the
// top bit clear. v4.public signs PAE(header, payload, footer, implicit).
func PAE(pieces ...[]byte) []byte {
	n := 8
	for _, p := range pieces {
		n += 8 + len(p)
	}
	b := make([]byte, 0, n)
	b = le64(b, len(pieces))
	for _, p := range pieces {
		b = le64(b, len(p))
		b = append(b, p...)
	}
	return b
}

func le64(b []byte, n int) []byte {
	return binary.LittleEndian.AppendUint64(b, uint64(n)&(1<<63-1))
}

// SignV4Public signs payload, footer and the implicit assertion as a PASETO
// v4.public token. The signer must hold an Ed25519 key; it is called once
// with the PAE message and crypto.Hash(0), so a KMS or HSM signer fits.
// footer is sent in clear; implicit is signed but not sent, and the verifier
// must supply the same bytes.
func SignV4Public(signer crypto.Signer, payload, footer, implicit []byte) (string, error) {
	if signer == nil {
		return "", fmt.Errorf("%w: nil signer", ErrInvalidKey)
	}
	if pub, ok := signer.Public().(ed25519.PublicKey); !ok || len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: signer is not Ed25519", ErrInvalidKey)
	}
	return signV4Public(signer, payload, footer, implicit)
}

func signV4Public(signer crypto.Signer, payload, footer, implicit []byte) (string, error) {
	m2 := PAE([]byte(HeaderV4Public), payload, footer, implicit)
	// Ed25519 takes no randomness; a remote signer may still want a reader.
	sig, err := signer.Sign(rand.Reader, m2, crypto.Hash(0))
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return "", fmt.Errorf("%w: signer returned a malformed signature", ErrInvalidKey)
	}
	body := make([]byte, 0, len(payload)+len(sig))
	body = append(append(body, payload...), sig...)
	n := len(HeaderV4Public) + b64.EncodedLen(len(body))
	if len(footer) > 0 {
		n += 1 + b64.EncodedLen(len(footer))
	}
	out := make([]byte, 0, n)
	out = append(out, HeaderV4Public...)
	out = b64.AppendEncode(out, body)
	if len(footer) > 0 {
		out = append(out, '.')
		out = b64.AppendEncode(out, footer)
	}
	return string(out), nil
}

// split cuts a tainted token after its v4.public header into the encoded
// body and footer. A present but empty footer segment ("....") is refused:
// one token, one spelling.
func split(tainted string) (body, footer string, hasFooter bool, err error) {
	if !strings.HasPrefix(tainted, HeaderV4Public) {
		return "", "", false, fmt.Errorf("%w: not a v4.public token", ErrMalformed)
	}
	body, footer, hasFooter = strings.Cut(tainted[len(HeaderV4Public):], ".")
	if hasFooter && (footer == "" || strings.IndexByte(footer, '.') >= 0) {
		return "", "", false, fmt.Errorf("%w: wrong number of segments", ErrMalformed)
	}
	return body, footer, hasFooter, nil
}

// VerifyV4Public checks a v4.public token's signature with key and the
// implicit assertion, and returns its payload and footer (nil when absent).
// Every failure after the header check — bad base64, a body too short to
// hold a signature, a wrong signature — is the one opaque
// ErrInvalidSignature. The payload is authentic but NOT validated: parse it
// with ParseClaims (or use the verifier package).
//
// SECURITY: VerifyV4Public allocates in proportion to the token and sets no
// size limit of its own; bound untrusted input first, as verifier.Verifier
// does.
func VerifyV4Public(key keys.PublicKey, tainted string, implicit []byte) (payload, footer []byte, err error) {
	if key.IsZero() {
		return nil, nil, fmt.Errorf("%w: zero public key", ErrInvalidKey)
	}
	bodyEnc, footEnc, _, err := split(tainted)
	if err != nil {
		return nil, nil, err
	}
	bodyLen, ok1 := decodedLen(len(bodyEnc))
	footLen, ok2 := decodedLen(len(footEnc))
	if !ok1 || !ok2 || bodyLen < ed25519.SignatureSize {
		return nil, nil, ErrInvalidSignature
	}
	mLen := bodyLen - ed25519.SignatureSize
	// One buffer laid out as the PAE message. The body (payload||sig) is
	// decoded straight into the payload slot; the signature bytes that spill
	// past it are saved before the footer's length overwrites them.
	const mOff = 8 + 8 + len(HeaderV4Public) + 8
	fOff := mOff + mLen + 8
	iOff := fOff + footLen + 8
	total := iOff + len(implicit)
	buf := make([]byte, max(total, mOff+bodyLen))
	binary.LittleEndian.PutUint64(buf[0:], 4)
	binary.LittleEndian.PutUint64(buf[8:], uint64(len(HeaderV4Public)))
	copy(buf[16:], HeaderV4Public)
	binary.LittleEndian.PutUint64(buf[mOff-8:], uint64(mLen))
	if !decodeB64(buf[mOff:mOff+bodyLen], bodyEnc) {
		return nil, nil, ErrInvalidSignature
	}
	var sig [ed25519.SignatureSize]byte
	copy(sig[:], buf[mOff+mLen:])
	binary.LittleEndian.PutUint64(buf[fOff-8:], uint64(footLen))
	if !decodeB64(buf[fOff:fOff+footLen], footEnc) {
		return nil, nil, ErrInvalidSignature
	}
	binary.LittleEndian.PutUint64(buf[iOff-8:], uint64(len(implicit)))
	copy(buf[iOff:], implicit)
	if !key.Verify(buf[:total], sig[:]) {
		return nil, nil, ErrInvalidSignature
	}
	payload = buf[mOff : mOff+mLen : mOff+mLen]
	if footLen > 0 {
		footer = buf[fOff : fOff+footLen : fOff+footLen]
	}
	return payload, footer, nil
}

// UnsafeFooter returns the decoded footer of a v4.public token WITHOUT
// checking the signature (nil when the token has none). Its only use is to
// choose the verification key.
//
// SECURITY: the result is attacker-controlled until VerifyV4Public has
// checked the token. It is bounded by MaxFooterSize.
func UnsafeFooter(tainted string) ([]byte, error) {
	var buf [MaxFooterSize]byte
	f, err := unsafeFooterInto(&buf, tainted)
	if err != nil || f == nil {
		return nil, err
	}
	return append([]byte(nil), f...), nil
}

func unsafeFooterInto(buf *[MaxFooterSize]byte, tainted string) ([]byte, error) {
	_, footEnc, hasFooter, err := split(tainted)
	if err != nil {
		return nil, err
	}
	if !hasFooter {
		return nil, nil
	}
	n, ok := decodedLen(len(footEnc))
	if !ok {
		return nil, fmt.Errorf("%w: bad encoding", ErrFooter)
	}
	if n > MaxFooterSize {
		return nil, fmt.Errorf("%w: too large", ErrFooter)
	}
	if !decodeB64(buf[:n], footEnc) {
		return nil, fmt.Errorf("%w: bad encoding", ErrFooter)
	}
	return buf[:n], nil
}

// decodedLen is the length of unpadded base64 of n characters; n%4 == 1 is
// never valid.
func decodedLen(n int) (int, bool) {
	if n%4 == 1 {
		return 0, false
	}
	return n/4*3 + (n%4*6)/8, true
}

var b64Rev = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeB64 decodes unpadded base64url from a string into dst, which must be
// exactly decodedLen(len(s)) long. It is strict where encoding/base64 is
// not: it refuses CR and LF (which base64 skips) as well as padding and
// non-zero trailing bits, so each byte string has exactly one encoding and a
// token cannot be re-spelled without breaking it.
func decodeB64(dst []byte, s string) bool {
	var bad byte
	di := 0
	for len(s) >= 4 {
		a, b, c, d := b64Rev[s[0]], b64Rev[s[1]], b64Rev[s[2]], b64Rev[s[3]]
		bad |= a | b | c | d
		dst[di] = a<<2 | b>>4
		dst[di+1] = b<<4 | c>>2
		dst[di+2] = c<<6 | d
		s = s[4:]
		di += 3
	}
	switch len(s) {
	case 2:
		a, b := b64Rev[s[0]], b64Rev[s[1]]
		bad |= a | b
		dst[di] = a<<2 | b>>4
		if b&0x0f != 0 {
			return false
		}
	case 3:
		a, b, c := b64Rev[s[0]], b64Rev[s[1]], b64Rev[s[2]]
		bad |= a | b | c
		dst[di] = a<<2 | b>>4
		dst[di+1] = b<<4 | c>>2
		if c&0x03 != 0 {
			return false
		}
	case 1:
		return false
	}
	// Valid values are < 64; 0xff marks a byte outside the alphabet.
	return bad&0xc0 == 0
}
