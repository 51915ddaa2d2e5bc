package dpop

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// A strict, allocation-light reader for the two small JSON objects of a proof
// (the JOSE header and the claims). It accepts exactly RFC 8259 JSON (checked
// against encoding/json by FuzzJSONObject) and in addition rejects:
//   - duplicate member names at any depth (after unescaping, so "t\u0079p"
//     duplicates "typ"),
//   - invalid UTF-8 and lone UTF-16 surrogates in strings,
//   - nesting deeper than maxJSONDepth and objects with more than
//     maxJSONMembers members (bounds the work an attacker can cause),
//   - anything but one object, with optional whitespace around it.
//
// encoding/json is not used because it keeps the last of duplicate members,
// matches member names case-insensitively, and a json.Decoder token walk
// costs about as much as a third of an ECDSA verification (see doc.go).

const (
	maxJSONDepth   = 8
	maxJSONMembers = 32
)

type jsonKind uint8

const (
	kindString jsonKind = iota + 1
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

// jsonReader reads values from data; every method leaves pos after the value
// it read, with surrounding whitespace consumed by the caller.
type jsonReader struct {
	data  []byte
	pos   int
	depth int
}

var errJSON = fmt.Errorf("%w: invalid JSON", ErrMalformed)

// readObject parses data as a single JSON object and calls member for each
// member name, with the reader positioned at the member's value. member must
// consume the value: with readString, readNumber, readObjectValue or skip.
func readObject(data []byte, member func(r *jsonReader, name string) error) error {
	r := &jsonReader{data: data}
	r.ws()
	if err := r.objectValue(member); err != nil {
		return err
	}
	r.ws()
	if r.pos != len(r.data) {
		return errJSON
	}
	return nil
}

// kind reports the kind of the value at pos without consuming it.
func (r *jsonReader) kind() jsonKind {
	if r.pos >= len(r.data) {
		return 0
	}
	switch c := r.data[r.pos]; {
	case c == '"':
		return kindString
	case c == '{':
		return kindObject
	case c == '[':
		return kindArray
	case c == 't' || c == 'f':
		return kindBool
	case c == 'n':
		return kindNull
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber
	}
	return 0
}

func (r *jsonReader) ws() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// objectValue reads an object at pos, checking member names for duplicates.
func (r *jsonReader) objectValue(member func(r *jsonReader, name string) error) error {
	if r.pos >= len(r.data) || r.data[r.pos] != '{' {
		return errJSON
	}
	r.depth++
	if r.depth > maxJSONDepth {
		return fmt.Errorf("%w: JSON nested too deeply", ErrMalformed)
	}
	r.pos++
	var names [maxJSONMembers]string
	n := 0
	r.ws()
	if r.pos < len(r.data) && r.data[r.pos] == '}' {
		r.pos++
		r.depth--
		return nil
	}
	for {
		r.ws()
		name, err := r.readString()
		if err != nil {
			return err
		}
		for _, seen := range names[:n] {
			if seen == name {
				return ErrDuplicateKey
			}
		}
		if n == len(names) {
			return fmt.Errorf("%w: too many JSON members", ErrMalformed)
		}
		names[n] = name
		n++
		r.ws()
		if r.pos >= len(r.data) || r.data[r.pos] != ':' {
			return errJSON
		}
		r.pos++
		r.ws()
		if err := member(r, name); err != nil {
			return err
		}
		r.ws()
		if r.pos >= len(r.data) {
			return errJSON
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
		case '}':
			r.pos++
			r.depth--
			return nil
		default:
			return errJSON
		}
	}
}

func skipMember(r *jsonReader, _ string) error { return r.skip() }

// skip reads and discards any value, still checking it strictly.
func (r *jsonReader) skip() error {
	switch r.kind() {
	case kindString:
		_, err := r.readString()
		return err
	case kindNumber:
		_, err := r.readNumber()
		return err
	case kindBool, kindNull:
		return r.literal()
	case kindObject:
		return r.objectValue(skipMember)
	case kindArray:
		return r.arrayValue()
	}
	return errJSON
}

func (r *jsonReader) arrayValue() error {
	r.depth++
	if r.depth > maxJSONDepth {
		return fmt.Errorf("%w: JSON nested too deeply", ErrMalformed)
	}
	r.pos++ // '['
	r.ws()
	if r.pos < len(r.data) && r.data[r.pos] == ']' {
		r.pos++
		r.depth--
		return nil
	}
	for {
		r.ws()
		if err := r.skip(); err != nil {
			return err
		}
		r.ws()
		if r.pos >= len(r.data) {
			return errJSON
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
		case ']':
			r.pos++
			r.depth--
			return nil
		default:
			return errJSON
		}
	}
}

func (r *jsonReader) literal() error {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(r.data)-r.pos >= len(lit) && string(r.data[r.pos:r.pos+len(lit)]) == lit {
			r.pos += len(lit)
			return nil
		}
	}
	return errJSON
}

// readNumber returns the text of a JSON number (RFC 8259 grammar).
func (r *jsonReader) readNumber() (string, error) {
	d, start := r.data, r.pos
	i := start
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return "", errJSON
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return "", errJSON
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return "", errJSON
		}
	}
	r.pos = i
	return string(d[start:i]), nil
}

// readString reads a JSON string and returns it unescaped. Invalid UTF-8,
// control characters and lone surrogates are rejected rather than replaced,
// so two different byte strings never decode to the same value.
func (r *jsonReader) readString() (string, error) {
	d := r.data
	if r.pos >= len(d) || d[r.pos] != '"' {
		return "", errJSON
	}
	start := r.pos + 1
	// Fast path: no escapes.
	i := start
	for i < len(d) {
		c := d[i]
		if c == '"' {
			s := d[start:i]
			if !utf8.Valid(s) {
				return "", fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
			}
			r.pos = i + 1
			return intern(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", errJSON
		}
		i++
	}
	if i >= len(d) {
		return "", errJSON
	}
	buf := make([]byte, 0, i-start+16)
	buf = append(buf, d[start:i]...)
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			if !utf8.Valid(buf) {
				return "", fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
			}
			r.pos = i + 1
			return string(buf), nil
		case c < 0x20:
			return "", errJSON
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		// Escape sequence.
		if i+1 >= len(d) {
			return "", errJSON
		}
		e := d[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r1, ok := hex4(d, i)
			if !ok {
				return "", errJSON
			}
			i += 4
			if utf16.IsSurrogate(r1) {
				// Must be a high surrogate followed by \u low surrogate.
				if r1 >= 0xdc00 || i+6 > len(d) || d[i] != '\\' || d[i+1] != 'u' {
					return "", fmt.Errorf("%w: lone surrogate", ErrMalformed)
				}
				r2, ok := hex4(d, i+2)
				if !ok {
					return "", errJSON
				}
				dec := utf16.DecodeRune(r1, r2)
				if dec == utf8.RuneError {
					return "", fmt.Errorf("%w: lone surrogate", ErrMalformed)
				}
				i += 6
				r1 = dec
			}
			buf = utf8.AppendRune(buf, r1)
		default:
			return "", errJSON
		}
	}
	return "", errJSON
}

// intern returns the names this package looks for without allocating
// (the compiler does not allocate for a switch on string(b)).
func intern(b []byte) string {
	switch string(b) {
	case "typ":
		return "typ"
	case "alg":
		return "alg"
	case "jwk":
		return "jwk"
	case "kty":
		return "kty"
	case "crv":
		return "crv"
	case "x":
		return "x"
	case "y":
		return "y"
	case "jti":
		return "jti"
	case "htm":
		return "htm"
	case "htu":
		return "htu"
	case "iat":
		return "iat"
	case "ath":
		return "ath"
	case "nonce":
		return "nonce"
	case "dpop+jwt":
		return "dpop+jwt"
	case "ES256":
		return "ES256"
	case "EdDSA":
		return "EdDSA"
	case "Ed25519":
		return "Ed25519"
	case "EC":
		return "EC"
	case "OKP":
		return "OKP"
	case "P-256":
		return "P-256"
	case "POST":
		return "POST"
	case "GET":
		return "GET"
	}
	return string(b)
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var v rune
	for _, c := range d[i : i+4] {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			v |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}
