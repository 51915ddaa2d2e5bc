package token

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hallpass/hallpass/internal/strictjson"
)

// MaxTTL is the longest lifetime (exp - iat) a token may have, whoever
// minted it. It bounds how long a retired key must stay published and a
// denylist entry must live.
const MaxTTL = 60 * time.Minute

// maxClaimsDepth bounds nesting in the payload; our claims need two levels.
const maxClaimsDepth = 16

// Claims are the claims of a hallpass access token. Times are UTC and, when
// minted here, whole seconds.
//
// Decode them only with ParseClaims (or json.Unmarshal, which calls
// UnmarshalJSON and applies the same strict rules).
type Claims struct {
	Issuer       string       `json:"iss"` // issuer URL
	Audience     string       `json:"aud"` // the one intended audience
	Subject      string       `json:"sub"` // account id
	Device       string       `json:"dev"` // device id
	Confirmation Confirmation `json:"cnf"` // proof-of-possession key (RFC 7800)
	IssuedAt     time.Time    `json:"iat"`
	NotBefore    time.Time    `json:"nbf"`
	Expiry       time.Time    `json:"exp"`
	ID           string       `json:"jti"` // 128 random bits, base64url
}

// Confirmation binds the token to a device key (RFC 7800, RFC 9449).
type Confirmation struct {
	// JKT is the base64url SHA-256 JWK thumbprint (RFC 7638) of the device's
	// DPoP key.
	JKT string `json:"jkt"`
}

// Claim names, in encoding order; the index is the claim's bit in a
// presence mask.
var claimNames = [...]string{"iss", "aud", "sub", "dev", "cnf", "iat", "nbf", "exp", "jti"}

const allClaims = 1<<len(claimNames) - 1

// ParseClaims decodes a token payload in one pass. It refuses anything but a
// single JSON object; duplicate member names at any depth (compared after
// unescaping); invalid UTF-8, lone surrogates and nesting deeper than 16; a
// required claim (iss, aud, sub, dev, cnf.jkt, iat, nbf, exp, jti) that is
// missing, not a string (cnf: not an object), empty, or not an RFC 3339 time;
// a cnf.jkt that is not a base64url SHA-256 thumbprint; and times that are
// inconsistent (exp after iat and nbf, exp - iat at most MaxTTL).
//
// Unknown members are validated the same way and otherwise ignored, so that
// the issuer can add a claim before every verifier knows it. Member names are
// case-sensitive.
//
// ParseClaims checks no clock and no issuer or audience: that is the
// verifier's job.
func ParseClaims(payload []byte) (*Claims, error) {
	c := new(Claims)
	if err := c.parse(payload); err != nil {
		return nil, err
	}
	return c, nil
}

// UnmarshalJSON applies ParseClaims's rules.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var t Claims
	if err := t.parse(b); err != nil {
		return err
	}
	*c = t
	return nil
}

// MarshalJSON returns the encoding used in tokens: the claims in a fixed
// order, times in RFC 3339 UTC.
func (c Claims) MarshalJSON() ([]byte, error) {
	return c.AppendJSON(make([]byte, 0, 384)), nil
}

// AppendJSON appends the token encoding of c to b.
func (c *Claims) AppendJSON(b []byte) []byte {
	b = append(b, `{"iss":`...)
	b = appendString(b, c.Issuer)
	b = append(b, `,"aud":`...)
	b = appendString(b, c.Audience)
	b = append(b, `,"sub":`...)
	b = appendString(b, c.Subject)
	b = append(b, `,"dev":`...)
	b = appendString(b, c.Device)
	b = append(b, `,"cnf":{"jkt":`...)
	b = appendString(b, c.Confirmation.JKT)
	b = append(b, `},"iat":"`...)
	b = c.IssuedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","nbf":"`...)
	b = c.NotBefore.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","exp":"`...)
	b = c.Expiry.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","jti":`...)
	b = appendString(b, c.ID)
	return append(b, '}')
}

// claimsReader turns the payload into a string once, on first need, so that
// every claim string is a substring of that one allocation.
type claimsReader struct {
	strictjson.Reader
	b []byte
	s string
}

func claimsErr(err error) error { return fmt.Errorf("%w: %w", ErrClaims, err) }

func (r *claimsReader) stringValue(name string) (string, error) {
	if r.Kind() != strictjson.KindString {
		return "", fmt.Errorf("%w: %s is not a string", ErrClaims, name)
	}
	start, end, esc, err := r.RawString()
	if err != nil {
		return "", claimsErr(err)
	}
	if esc {
		return string(strictjson.Unescape(r.b[start:end])), nil
	}
	if r.s == "" {
		r.s = string(r.b)
	}
	return r.s[start:end], nil
}

func (r *claimsReader) timeValue(name string) (time.Time, error) {
	v, err := r.stringValue(name)
	if err != nil {
		return time.Time{}, err
	}
	t, ok := parseRFC3339(v)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: %s is not an RFC 3339 time", ErrClaims, name)
	}
	return t.UTC(), nil
}

// parseRFC3339 parses an RFC 3339 date-time (section 5.6). time.Parse alone
// is not enough: it also takes a comma before the fraction, a one-digit
// hour and offsets of +24:00 or with minute 60 (go.dev/issue/54580), which
// another verifier of the same signed payload may refuse.
func parseRFC3339(s string) (time.Time, bool) {
	if !isRFC3339Syntax(s) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s) // checks the ranges; its error quotes s
	return t, err == nil
}

// isRFC3339Syntax checks the form YYYY-MM-DDTHH:MM:SS[.F...](Z|+HH:MM|-HH:MM),
// with an offset hour below 24 and offset minute below 60.
func isRFC3339Syntax(s string) bool {
	const layout = "0000-00-00T00:00:00"
	if len(s) <= len(layout) {
		return false
	}
	for i := 0; i < len(layout); i++ {
		if layout[i] == '0' && !isDigit(s[i]) || layout[i] != '0' && s[i] != layout[i] {
			return false
		}
	}
	rest := s[len(layout):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	if rest == "Z" {
		return true
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigit(rest[1]) && isDigit(rest[2]) && isDigit(rest[4]) && isDigit(rest[5]) &&
		rest[1:3] < "24" && rest[4:6] < "60"
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parse decodes payload into c under ParseClaims's rules.
func (c *Claims) parse(payload []byte) error {
	r := claimsReader{Reader: strictjson.NewReader(payload, maxClaimsDepth, 0), b: payload}
	if r.Kind() != strictjson.KindObject {
		return claimsErr(errNotObject)
	}
	seen, err := c.members(&r)
	if err != nil {
		return err
	}
	if err := r.End(); err != nil {
		return claimsErr(err)
	}
	if err := missingClaim(seen); err != nil {
		return err
	}
	return c.validate()
}

// members reads the payload object into c and returns the presence mask of the claims it held.
func (c *Claims) members(r *claimsReader) (uint, error) {
	var (
		obj  strictjson.Object
		seen uint
	)
	if err := r.OpenObject(&obj); err != nil {
		return 0, claimsErr(err)
	}
	for {
		key, ok, err := r.Next(&obj)
		if err != nil {
			return 0, claimsErr(err)
		}
		if !ok {
			return seen, nil
		}
		bit, err := c.member(r, key)
		if err != nil {
			return 0, err
		}
		seen |= bit
	}
}

// member decodes the value of member key into c and returns its claim's presence bit (0: unknown, skipped).
func (c *Claims) member(r *claimsReader, key []byte) (uint, error) {
	var err error
	switch string(key) {
	case "iss":
		c.Issuer, err = r.stringValue("iss")
		return 1 << 0, err
	case "aud":
		c.Audience, err = r.stringValue("aud")
		return 1 << 1, err
	case "sub":
		c.Subject, err = r.stringValue("sub")
		return 1 << 2, err
	case "dev":
		c.Device, err = r.stringValue("dev")
		return 1 << 3, err
	case "cnf":
		return 1 << 4, r.confirmation(&c.Confirmation)
	case "iat":
		c.IssuedAt, err = r.timeValue("iat")
		return 1 << 5, err
	case "nbf":
		c.NotBefore, err = r.timeValue("nbf")
		return 1 << 6, err
	case "exp":
		c.Expiry, err = r.timeValue("exp")
		return 1 << 7, err
	case "jti":
		c.ID, err = r.stringValue("jti")
		return 1 << 8, err
	}
	if err := r.Skip(); err != nil {
		return 0, claimsErr(err)
	}
	return 0, nil
}

// missingClaim reports the first claim, in encoding order, whose bit is not set in seen.
func missingClaim(seen uint) error {
	if seen == allClaims {
		return nil
	}
	for i, name := range claimNames {
		if seen&(1<<i) == 0 {
			return fmt.Errorf("%w: %s missing", ErrClaims, name)
		}
	}
	return nil
}

func (r *claimsReader) confirmation(cnf *Confirmation) error {
	if r.Kind() != strictjson.KindObject {
		return fmt.Errorf("%w: cnf is not an object", ErrClaims)
	}
	var (
		obj strictjson.Object
		got bool
	)
	if err := r.OpenObject(&obj); err != nil {
		return claimsErr(err)
	}
	for {
		key, ok, err := r.Next(&obj)
		if err != nil {
			return claimsErr(err)
		}
		if !ok {
			break
		}
		if string(key) == "jkt" {
			got = true
			if cnf.JKT, err = r.stringValue("cnf.jkt"); err != nil {
				return err
			}
		} else if err := r.Skip(); err != nil {
			return claimsErr(err)
		}
	}
	if !got {
		return fmt.Errorf("%w: cnf.jkt missing", ErrClaims)
	}
	return nil
}

func (c *Claims) validate() error {
	for _, f := range [...]struct{ name, v string }{
		{"iss", c.Issuer}, {"aud", c.Audience}, {"sub", c.Subject}, {"dev", c.Device},
	} {
		if f.v == "" {
			return fmt.Errorf("%w: %s empty", ErrClaims, f.name)
		}
	}
	if !IsThumbprint(c.Confirmation.JKT) {
		return fmt.Errorf("%w: cnf.jkt is not a base64url SHA-256 thumbprint", ErrClaims)
	}
	if c.ID == "" || len(c.ID) > 64 || !isBase64URL(c.ID) {
		return fmt.Errorf("%w: jti is not 1 to 64 base64url characters", ErrClaims)
	}
	switch {
	case !c.Expiry.After(c.IssuedAt):
		return fmt.Errorf("%w: exp not after iat", ErrClaims)
	case !c.Expiry.After(c.NotBefore):
		return fmt.Errorf("%w: exp not after nbf", ErrClaims)
	case c.Expiry.Sub(c.IssuedAt) > MaxTTL:
		return fmt.Errorf("%w: lifetime exceeds the maximum", ErrClaims)
	}
	return nil
}

// IsThumbprint reports whether s looks like a base64url (unpadded) SHA-256
// thumbprint: 43 characters that decode to 32 bytes.
func IsThumbprint(s string) bool {
	// 43 characters carry 258 bits; the last two must be zero.
	return len(s) == 43 && isBase64URL(s) && b64Rev[s[42]]&3 == 0
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b64Rev[s[i]] == 0xff {
			return false
		}
	}
	return true
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// in encoding/json; Mint refuses such input before it gets here.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			if c == '"' || c == '\\' {
				b = append(b, '\\', c)
			} else {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
