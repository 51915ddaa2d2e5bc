package flow

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
)

// Codes people type: link codes (12 symbols, 60 bits, shown XXXX-XXXX-XXXX)
// and recovery codes (20 symbols, 100 bits, shown XXXXX-XXXXX-XXXXX-XXXXX),
// in Crockford's base32 (no I, L, O, U; case-insensitive; I and L read as
// 1, O as 0). They fit a QR code and survive being read aloud. The store
// keeps only their keyed digest.
const (
	crockford        = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	LinkCodeLen      = 12
	RecoveryCodeLen  = 20
	linkCodeGroup    = 4
	recoveryGroup    = 5
	maxTypedCodeSize = 64 // bytes of a typed code before normalisation
)

// newCode returns n random Crockford symbols from r, grouped by group with
// hyphens. Each symbol takes 5 bits of one random byte (256 is a multiple
// of 32, so there is no bias).
func newCode(r io.Reader, n, group int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	var sb strings.Builder
	for i, v := range b {
		if i > 0 && i%group == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(crockford[v&31])
	}
	return sb.String(), nil
}

var errCodeShape = errors.New("flow: not a code of the expected shape")

// normalizeCode turns a typed code into its canonical symbols: case
// folded, hyphens and spaces dropped, I and L read as 1, O as 0. It
// refuses anything else, and a code of another length than n.
func normalizeCode(tainted string, n int) (string, error) {
	if len(tainted) > maxTypedCodeSize {
		return "", errCodeShape
	}
	var sb strings.Builder
	for i := 0; i < len(tainted); i++ {
		c := tainted[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		switch c {
		case '-', ' ':
			continue
		case 'I', 'L':
			c = '1'
		case 'O':
			c = '0'
		}
		if strings.IndexByte(crockford, c) < 0 {
			return "", errCodeShape
		}
		sb.WriteByte(c)
	}
	if sb.Len() != n {
		return "", errCodeShape
	}
	return sb.String(), nil
}

// Pepper keys the digests of link and recovery codes: a server secret kept
// in the key ring (wrapped at rest, rotatable). Digests returns the digest
// of msg under every pepper the issuer holds, the current one first; a new
// code is stored under the first, and a presented code is looked up under
// each, so a rotation does not void the codes made before it.
type Pepper interface {
	Digests(msg []byte) [][]byte
}

// StaticPepper is a Pepper over fixed secrets, the current one first.
type StaticPepper [][]byte

// Digests implements Pepper with HMAC-SHA-256.
func (p StaticPepper) Digests(msg []byte) [][]byte {
	out := make([][]byte, 0, len(p))
	for _, k := range p {
		m := hmac.New(sha256.New, k)
		m.Write(msg)
		out = append(out, m.Sum(nil))
	}
	return out
}

// linkMessage and recoveryMessage separate the two kinds of digest (a link
// code can never match a recovery digest), and bind a recovery digest to
// its account's salt.
func linkMessage(code string) []byte { return []byte("hallpass link code\x00" + code) }

func recoveryMessage(salt []byte, code string) []byte {
	return append(append([]byte("hallpass recovery code\x00"), salt...), "\x00"+code...)
}

var errNoPepper = errors.New("flow: no pepper configured; link and recovery codes are off")

// pepper returns the configured Pepper, or ErrUnavailable without one: the
// code flows fail closed.
func (f *Flows) pepper() (Pepper, error) {
	if f.cfg.Pepper == nil {
		return nil, fail(ErrUnavailable, errNoPepper)
	}
	return f.cfg.Pepper, nil
}
