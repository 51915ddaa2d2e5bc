package token

import (
	"fmt"

	"github.com/hallpass/hallpass/internal/strictjson"
	"github.com/hallpass/hallpass/keys"
)

// maxFooterDepth bounds nesting in the footer. Only {"kid": "..."} is
// accepted, so one level would do; the limit guards the generic skip that
// runs before an unexpected member is refused.
const maxFooterDepth = 2

// Footer is the decoded footer of a hallpass access token: the id of the
// signing key.
type Footer struct {
	Kid keys.KeyID
}

// AppendJSON appends the canonical footer encoding, {"kid":"k4.pid..."}.
func (f Footer) AppendJSON(b []byte) []byte {
	b = append(b, `{"kid":`...)
	b = appendString(b, string(f.Kid))
	return append(b, '}')
}

// UnsafeParseFooterKid reads the kid from a v4.public token's footer WITHOUT
// checking the signature. The footer must be present, at most MaxFooterSize
// bytes, a JSON object whose only member is "kid" (no duplicate), and the kid
// a well-formed k4.pid.
//
// SECURITY: the kid is attacker-controlled. Use it only to look up a key in a
// trusted set, then verify the token with that key; never to fetch a key
// from a location it names.
func UnsafeParseFooterKid(tainted string) (Footer, error) {
	var buf [MaxFooterSize]byte
	b, err := unsafeFooterInto(&buf, tainted)
	if err != nil {
		return Footer{}, err
	}
	if b == nil {
		return Footer{}, fmt.Errorf("%w: missing", ErrFooter)
	}
	return parseFooter(b)
}

// ParseFooter parses a decoded footer with the rules of UnsafeParseFooterKid.
func ParseFooter(b []byte) (Footer, error) {
	if len(b) > MaxFooterSize {
		return Footer{}, fmt.Errorf("%w: too large", ErrFooter)
	}
	return parseFooter(b)
}

func parseFooter(b []byte) (Footer, error) {
	p := strictjson.NewReader(b, maxFooterDepth, 0)
	if p.Kind() != strictjson.KindObject {
		return Footer{}, fmt.Errorf("%w: %w", ErrFooter, errNotObject)
	}
	var (
		obj strictjson.Object
		kid string
		got bool
	)
	if err := p.OpenObject(&obj); err != nil {
		return Footer{}, fmt.Errorf("%w: %w", ErrFooter, err)
	}
	for {
		key, ok, err := p.Next(&obj)
		if err != nil {
			return Footer{}, fmt.Errorf("%w: %w", ErrFooter, err)
		}
		if !ok {
			break
		}
		if string(key) != "kid" {
			// Validate first so that depth and syntax errors surface as such.
			if err := p.Skip(); err != nil {
				return Footer{}, fmt.Errorf("%w: %w", ErrFooter, err)
			}
			return Footer{}, fmt.Errorf("%w: %w", ErrFooter, errUnexpected)
		}
		if p.Kind() != strictjson.KindString {
			return Footer{}, fmt.Errorf("%w: kid is not a string", ErrFooter)
		}
		raw, err := p.ReadString()
		if err != nil {
			return Footer{}, fmt.Errorf("%w: %w", ErrFooter, err)
		}
		kid, got = string(raw), true
	}
	if err := p.End(); err != nil {
		return Footer{}, fmt.Errorf("%w: %w", ErrFooter, err)
	}
	if !got {
		return Footer{}, fmt.Errorf("%w: no kid", ErrFooter)
	}
	id, err := keys.ParseKeyID(kid, "pid")
	if err != nil {
		return Footer{}, fmt.Errorf("%w: kid is not a k4.pid", ErrFooter)
	}
	return Footer{Kid: id}, nil
}
