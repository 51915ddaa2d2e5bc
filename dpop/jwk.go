package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/hallpass/hallpass/internal/strictjson"
)

var b64 = base64.RawURLEncoding.Strict()

// publicJWK is a validated public key from a proof's jwk header member.
type publicJWK struct {
	ec   *ecdsa.PublicKey  // kty EC, crv P-256
	ecPt [65]byte          // uncompressed point of ec: 0x04 || X || Y
	ed   ed25519.PublicKey // kty OKP, crv Ed25519
}

func ecJWK(pub *ecdsa.PublicKey) (publicJWK, error) {
	b, err := pub.Bytes()
	if err != nil || len(b) != 65 {
		return publicJWK{}, fmt.Errorf("%w: invalid P-256 key", ErrKey)
	}
	k := publicJWK{ec: pub}
	copy(k.ecPt[:], b)
	return k, nil
}

func (k publicJWK) public() crypto.PublicKey {
	if k.ec != nil {
		return k.ec
	}
	return k.ed
}

// Members of a JWK that only a private or symmetric key has (RFC 7518
// section 6.2.2, 6.3.2, 6.4 and RFC 8037 section 2). Their presence means the
// client leaked its private key into a header; refuse it.
func isPrivateJWKMember(name []byte) bool {
	switch string(name) {
	case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
		return true
	}
	return false
}

// readJWK reads the jwk header member: a JSON object with kty, crv, x (and y
// for EC), strictly base64url, no private members. Other members (kid, use,
// key_ops, alg, ext as WebCrypto exports them) are allowed and ignored.
func readJWK(r *jsonReader) (publicJWK, error) {
	var m jwkMembers
	if err := m.read(r); err != nil {
		return publicJWK{}, err
	}
	if !m.hasKty || !m.hasCrv || !m.hasX {
		return publicJWK{}, fmt.Errorf("%w: jwk lacks kty, crv or x", ErrKey)
	}
	switch {
	case m.kty == "EC" && m.crv == "P-256":
		if !m.hasY {
			return publicJWK{}, fmt.Errorf("%w: EC jwk lacks y", ErrKey)
		}
		return decodeP256JWK(m.x, m.y)
	case m.kty == "OKP" && m.crv == "Ed25519":
		if m.hasY {
			return publicJWK{}, fmt.Errorf("%w: OKP jwk has y", ErrKey)
		}
		return decodeEd25519JWK(m.x)
	}
	return publicJWK{}, fmt.Errorf("%w: unsupported kty or crv", ErrKey)
}

// jwkMembers are the jwk members readJWK uses, as read, with their presence.
type jwkMembers struct {
	kty, crv, x, y             string
	hasKty, hasCrv, hasX, hasY bool
}

// read reads the jwk object at r into m.
func (m *jwkMembers) read(r *jsonReader) error {
	var obj strictjson.Object
	if r.Kind() != strictjson.KindObject {
		return fmt.Errorf("%w: jwk is not an object", ErrKey)
	}
	if err := r.openObject(&obj); err != nil {
		return err
	}
	for {
		name, ok, err := r.next(&obj)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := m.readMember(r, name); err != nil {
			return err
		}
	}
}

// readMember reads the value of member name, refusing private key members.
func (m *jwkMembers) readMember(r *jsonReader, name []byte) error {
	var dst *string
	var has *bool
	switch string(name) {
	case "kty":
		dst, has = &m.kty, &m.hasKty
	case "crv":
		dst, has = &m.crv, &m.hasCrv
	case "x":
		dst, has = &m.x, &m.hasX
	case "y":
		dst, has = &m.y, &m.hasY
	default:
		if isPrivateJWKMember(name) {
			return fmt.Errorf("%w: jwk has a private or symmetric key member", ErrKey)
		}
		return r.skip()
	}
	if r.Kind() != strictjson.KindString {
		return fmt.Errorf("%w: jwk member is not a string", ErrKey)
	}
	s, err := r.readString()
	if err != nil {
		return err
	}
	*dst, *has = s, true
	return nil
}

// decodeP256JWK decodes the x and y coordinates of an EC P-256 jwk.
func decodeP256JWK(x, y string) (publicJWK, error) {
	var pt [65]byte
	pt[0] = 4
	if !decodeFixed(pt[1:33], x) || !decodeFixed(pt[33:], y) {
		return publicJWK{}, fmt.Errorf("%w: EC coordinate is not 32 bytes of base64url", ErrKey)
	}
	// ParseUncompressedPublicKey rejects points not on the curve and
	// the point at infinity.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt[:])
	if err != nil {
		return publicJWK{}, fmt.Errorf("%w: EC point is not on P-256", ErrKey)
	}
	return publicJWK{ec: pub, ecPt: pt}, nil
}

// decodeEd25519JWK decodes the x of an OKP Ed25519 jwk, refusing weak keys.
func decodeEd25519JWK(x string) (publicJWK, error) {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	if !decodeFixed(pub, x) {
		return publicJWK{}, fmt.Errorf("%w: Ed25519 x is not 32 bytes of base64url", ErrKey)
	}
	if isWeakEd25519(pub) {
		return publicJWK{}, fmt.Errorf("%w: Ed25519 key of small order", ErrKey)
	}
	return publicJWK{ed: pub}, nil
}

// decodeFixed decodes strict unpadded base64url s into exactly len(dst)
// bytes.
func decodeFixed(dst []byte, s string) bool {
	if len(s) != b64.EncodedLen(len(dst)) {
		return false
	}
	n, err := b64.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

// Thumbprint returns the RFC 7638 JWK SHA-256 thumbprint of pub,
// base64url-encoded without padding: the value of an access token's cnf.jkt
// (RFC 9449 section 6.1) and of Proof.JKT. pub must be an ed25519.PublicKey
// or an *ecdsa.PublicKey on P-256.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	var k publicJWK
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p == nil || p.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: not a P-256 key", ErrKey)
		}
		// Round-trip through the encoding to reject invalid points.
		b, err := p.Bytes()
		if err != nil {
			return "", fmt.Errorf("%w: invalid P-256 key", ErrKey)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
		if err != nil {
			return "", fmt.Errorf("%w: invalid P-256 key", ErrKey)
		}
		if k, err = ecJWK(pub); err != nil {
			return "", err
		}
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: invalid Ed25519 key", ErrKey)
		}
		k.ed = p
	default:
		return "", fmt.Errorf("%w: unsupported key type", ErrKey)
	}
	return k.thumbprint(), nil
}

// thumbprint hashes the RFC 7638 canonical form: required members only, in
// lexicographic order, no whitespace. It is built from the decoded key, never
// from the client's JSON, so any encoding of the same key has one thumbprint.
func (k publicJWK) thumbprint() string {
	var buf [160]byte
	var sum [sha256.Size]byte
	if k.ec != nil {
		b := append(buf[:0], `{"crv":"P-256","kty":"EC","x":"`...)
		b = b64.AppendEncode(b, k.ecPt[1:33])
		b = append(b, `","y":"`...)
		b = b64.AppendEncode(b, k.ecPt[33:65])
		b = append(b, `"}`...)
		sum = sha256.Sum256(b)
	} else {
		b := append(buf[:0], `{"crv":"Ed25519","kty":"OKP","x":"`...)
		b = b64.AppendEncode(b, k.ed)
		b = append(b, `"}`...)
		sum = sha256.Sum256(b)
	}
	return b64.EncodeToString(sum[:])
}

// isWeakEd25519 reports whether pub is one of the encodings of a point of
// small order that Go's ed25519.Verify accepts (the 8 torsion points, with
// the sign-bit and non-canonical variants). Signatures by such a "key" can
// be forged by anyone, so it must never be bound to a token. The list is the
// one go-jose v4 jwk.go keeps for the same purpose.
func isWeakEd25519(pub ed25519.PublicKey) bool {
	for i := range weakEd25519 {
		if string(pub) == weakEd25519[i] {
			return true
		}
	}
	return false
}

var weakEd25519 = [...]string{
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80",
	"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
	"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80",
	"\x26\xe8\x95\x8f\xc2\xb2\x27\xb0\x45\xc3\xf4\x89\xf2\xef\x98\xf0\xd5\xdf\xac\x05\xd3\xc6\x33\x39\xb1\x38\x02\x88\x6d\x53\xfc\x05",
	"\x26\xe8\x95\x8f\xc2\xb2\x27\xb0\x45\xc3\xf4\x89\xf2\xef\x98\xf0\xd5\xdf\xac\x05\xd3\xc6\x33\x39\xb1\x38\x02\x88\x6d\x53\xfc\x85",
	"\xc7\x17\x6a\x70\x3d\x4d\xd8\x4f\xba\x3c\x0b\x76\x0d\x10\x67\x0f\x2a\x20\x53\xfa\x2c\x39\xcc\xc6\x4e\xc7\xfd\x77\x92\xac\x03\x7a",
	"\xc7\x17\x6a\x70\x3d\x4d\xd8\x4f\xba\x3c\x0b\x76\x0d\x10\x67\x0f\x2a\x20\x53\xfa\x2c\x39\xcc\xc6\x4e\xc7\xfd\x77\x92\xac\x03\xfa",
	"\xec\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
	"\xec\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
	"\xed\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
	"\xed\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
	"\xee\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
	"\xee\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
}
