package token

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// A strict, allocation-light JSON reader (RFC 8259) for the two documents a
// token carries: the claims and the footer.
//
// Why not encoding/json: it accepts duplicate member names (the last one
// wins), matches member names case-insensitively ("ISS" fills Issuer), and
// replaces invalid UTF-8 and lone surrogates with U+FFFD. Each of those lets
// two parsers read one signed payload differently. This reader refuses all
// three, compares member names after unescaping ("\u0069ss" is "iss"), bounds
// the nesting depth, and decodes the known claims in the same single pass
// without reflection.

// Reasons a document is refused. The messages are fixed text: they never
// quote the input.
var (
	errSyntax     = errors.New("invalid JSON")
	errNotObject  = errors.New("not a JSON object")
	errDuplicate  = errors.New("duplicate member name")
	errDepth      = errors.New("nesting too deep")
	errUnexpected = errors.New("unexpected member")
)

type jsonParser struct {
	b        []byte
	i        int
	depth    int
	maxDepth int
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (p *jsonParser) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

// end reports an error unless only white space is left.
func (p *jsonParser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return errSyntax
	}
	return nil
}

// openObject consumes '{' (the caller has peeked it) and enters one level.
func (p *jsonParser) openObject() error {
	p.i++
	p.depth++
	if p.depth > p.maxDepth {
		return errDepth
	}
	return nil
}

// member reads the next member name of the current object and the colon
// after it. It returns done at the closing brace. ks records the names seen
// in this object so that a repeated name is refused.
func (p *jsonParser) member(ks *keySet, first bool) (key []byte, done bool, err error) {
	c := p.peek()
	if c == '}' {
		p.i++
		p.depth--
		return nil, true, nil
	}
	if !first {
		if c != ',' {
			return nil, false, errSyntax
		}
		p.i++
		p.ws()
	}
	start, end, esc, err := p.str()
	if err != nil {
		return nil, false, err
	}
	var unesc []byte
	key = p.b[start:end]
	if esc {
		unesc = unescape(key)
		key = unesc
	}
	if !ks.add(p.b, start, end, unesc) {
		return nil, false, errDuplicate
	}
	if p.peek() != ':' {
		return nil, false, errSyntax
	}
	p.i++
	return key, false, nil
}

// str reads a string at p.i and returns the bounds of its raw contents
// (between the quotes) and whether it holds escapes. It refuses control
// characters, invalid UTF-8, bad escapes and unpaired surrogates.
func (p *jsonParser) str() (start, end int, esc bool, err error) {
	b := p.b
	if p.i >= len(b) || b[p.i] != '"' {
		return 0, 0, false, errSyntax
	}
	i := p.i + 1
	start = i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			p.i = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, 0, false, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(b, i+2)
				if !ok {
					return 0, 0, false, errSyntax
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// Only a high surrogate followed by an escaped low one.
					if r >= 0xDC00 || i+1 >= len(b) || b[i] != '\\' || b[i+1] != 'u' {
						return 0, 0, false, errSyntax
					}
					r2, ok := hex4(b, i+2)
					if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
						return 0, 0, false, errSyntax
					}
					i += 6
				}
			default:
				return 0, 0, false, errSyntax
			}
		case c < 0x20:
			return 0, 0, false, errSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, 0, false, errSyntax
			}
			i += size
		}
	}
	return 0, 0, false, errSyntax
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape decodes the raw contents of a string that str has validated.
func unescape(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(raw, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(raw, i+2)
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, raw[i+1])
		}
		i += 2
	}
	return out
}

// skipValue validates one value of any type, checking nested objects for
// duplicate names and the depth limit.
func (p *jsonParser) skipValue() error {
	switch c := p.peek(); {
	case c == '{':
		if err := p.openObject(); err != nil {
			return err
		}
		var ks keySet
		for first := true; ; first = false {
			_, done, err := p.member(&ks, first)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			if err := p.skipValue(); err != nil {
				return err
			}
		}
	case c == '[':
		p.i++
		p.depth++
		if p.depth > p.maxDepth {
			return errDepth
		}
		if p.peek() == ']' {
			p.i++
			p.depth--
			return nil
		}
		for {
			if err := p.skipValue(); err != nil {
				return err
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				p.depth--
				return nil
			default:
				return errSyntax
			}
		}
	case c == '"':
		_, _, _, err := p.str()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	}
	return errSyntax
}

func (p *jsonParser) literal(lit string) error {
	if !bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
		return errSyntax
	}
	p.i += len(lit)
	return nil
}

func (p *jsonParser) number() error {
	b, i := p.b, p.i
	digits := func() bool {
		s := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		digits()
	default:
		return errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return errSyntax
		}
	}
	p.i = i
	return nil
}

// keySet holds the member names of one object as offsets into the input
// (or, for a name with escapes, its unescaped copy), so the common case
// allocates nothing and the input does not escape to the heap. Past a
// handful of names it switches to a map to stay linear.
type keySet struct {
	small [12]keySpan
	n     int
	big   map[string]struct{}
}

type keySpan struct {
	start, end int
	unesc      []byte
}

func (s *keySpan) name(b []byte) []byte {
	if s.unesc != nil {
		return s.unesc
	}
	return b[s.start:s.end]
}

// add records the name b[start:end] (unesc when it had escapes) and reports
// false if the object already had it.
func (k *keySet) add(b []byte, start, end int, unesc []byte) bool {
	e := keySpan{start, end, unesc}
	key := e.name(b)
	if k.big != nil {
		if _, dup := k.big[string(key)]; dup {
			return false
		}
		k.big[string(key)] = struct{}{}
		return true
	}
	for i := range k.small[:k.n] {
		if bytes.Equal(k.small[i].name(b), key) {
			return false
		}
	}
	if k.n < len(k.small) {
		k.small[k.n] = e
		k.n++
		return true
	}
	k.big = make(map[string]struct{}, 4*len(k.small))
	for i := range k.small {
		k.big[string(k.small[i].name(b))] = struct{}{}
	}
	k.big[string(key)] = struct{}{}
	return true
}
