package strictjson

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// Reasons a document is refused.
var (
	ErrSyntax    = errors.New("strictjson: invalid JSON")
	ErrUTF8      = errors.New("strictjson: invalid UTF-8 or lone surrogate")
	ErrDuplicate = errors.New("strictjson: duplicate member name")
	ErrDepth     = errors.New("strictjson: nesting too deep")
	ErrTooMany   = errors.New("strictjson: too many members")
)

// Kind is the type of a JSON value, told from its first byte.
type Kind uint8

// The kinds of JSON value; 0 is no value (end of input or a byte that starts
// none).
const (
	KindString Kind = iota + 1
	KindNumber
	KindBool
	KindNull
	KindObject
	KindArray
)

// Reader reads one JSON document. Every method first skips white space, and
// leaves the reader just after what it read.
type Reader struct {
	data       []byte
	pos        int
	depth      int
	maxDepth   int
	maxMembers int
}

// NewReader returns a reader of data that refuses nesting (objects and
// arrays) deeper than maxDepth and, if maxMembers > 0, objects with more
// than maxMembers members.
func NewReader(data []byte, maxDepth, maxMembers int) Reader {
	return Reader{data: data, maxDepth: maxDepth, maxMembers: maxMembers}
}

func (r *Reader) ws() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// Kind reports the kind of the next value without consuming it.
func (r *Reader) Kind() Kind {
	r.ws()
	if r.pos >= len(r.data) {
		return 0
	}
	switch c := r.data[r.pos]; {
	case c == '"':
		return KindString
	case c == '{':
		return KindObject
	case c == '[':
		return KindArray
	case c == 't' || c == 'f':
		return KindBool
	case c == 'n':
		return KindNull
	case c == '-' || ('0' <= c && c <= '9'):
		return KindNumber
	}
	return 0
}

// End returns an error unless only white space is left.
func (r *Reader) End() error {
	r.ws()
	if r.pos != len(r.data) {
		return ErrSyntax
	}
	return nil
}

// Object is the state of one object being read: the member names seen so
// far. Its zero value is ready for [Reader.OpenObject].
type Object struct {
	names nameSet
	n     int
}

// OpenObject consumes the '{' of an object and enters it; read its members
// with Next.
func (r *Reader) OpenObject(o *Object) error {
	r.ws()
	if r.pos >= len(r.data) || r.data[r.pos] != '{' {
		return ErrSyntax
	}
	r.pos++
	r.depth++
	if r.depth > r.maxDepth {
		return ErrDepth
	}
	return nil
}

// Next reads the next member name of o and the colon after it, leaving the
// reader at the member's value, which the caller must then consume. At the
// closing brace it returns ok false. The name is unescaped; it aliases the
// input unless it had escapes, and is valid until the next call.
func (r *Reader) Next(o *Object) (name []byte, ok bool, err error) {
	r.ws()
	if r.pos >= len(r.data) {
		return nil, false, ErrSyntax
	}
	if c := r.data[r.pos]; c == '}' {
		r.pos++
		r.depth--
		return nil, false, nil
	} else if o.n > 0 {
		if c != ',' {
			return nil, false, ErrSyntax
		}
		r.pos++
		r.ws()
	}
	start, end, esc, err := r.RawString()
	if err != nil {
		return nil, false, err
	}
	var unesc []byte
	name = r.data[start:end]
	if esc {
		unesc = Unescape(name)
		name = unesc
	}
	if !o.names.add(r.data, start, end, unesc) {
		return nil, false, ErrDuplicate
	}
	if r.maxMembers > 0 && o.n >= r.maxMembers {
		return nil, false, ErrTooMany
	}
	o.n++
	r.ws()
	if r.pos >= len(r.data) || r.data[r.pos] != ':' {
		return nil, false, ErrSyntax
	}
	r.pos++
	return name, true, nil
}

// ReadString reads a string and returns it unescaped. The result aliases the
// input unless the string had escapes.
func (r *Reader) ReadString() ([]byte, error) {
	start, end, esc, err := r.RawString()
	if err != nil {
		return nil, err
	}
	if esc {
		return Unescape(r.data[start:end]), nil
	}
	return r.data[start:end], nil
}

// RawString reads a string and returns the bounds in the input of its raw
// contents (between the quotes) and whether they hold escapes; Unescape
// decodes them. It refuses control characters, bad escapes, invalid UTF-8
// and unpaired surrogates.
func (r *Reader) RawString() (start, end int, escaped bool, err error) {
	r.ws()
	b := r.data
	if r.pos >= len(b) || b[r.pos] != '"' {
		return 0, 0, false, ErrSyntax
	}
	start = r.pos + 1
	nonASCII := false
	for i := start; i < len(b); {
		c := b[i]
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf:
			i++
		case c == '"':
			// Escapes are ASCII and never split a valid sequence, so
			// checking the raw contents checks every literal byte.
			if nonASCII && !utf8.Valid(b[start:i]) {
				return 0, 0, false, ErrUTF8
			}
			r.pos = i + 1
			return start, i, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, 0, false, ErrSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r1, ok := hex4(b, i+2)
				if !ok {
					return 0, 0, false, ErrSyntax
				}
				i += 6
				if utf16.IsSurrogate(r1) {
					// Only a high surrogate followed by an escaped low one.
					if r1 >= 0xDC00 || i+1 >= len(b) || b[i] != '\\' || b[i+1] != 'u' {
						return 0, 0, false, ErrUTF8
					}
					r2, ok := hex4(b, i+2)
					if !ok {
						return 0, 0, false, ErrSyntax
					}
					if r2 < 0xDC00 || r2 > 0xDFFF {
						return 0, 0, false, ErrUTF8
					}
					i += 6
				}
			default:
				return 0, 0, false, ErrSyntax
			}
		case c < 0x20:
			return 0, 0, false, ErrSyntax
		default:
			nonASCII = true
			i++
		}
	}
	return 0, 0, false, ErrSyntax
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

// Unescape decodes the raw contents of a string that RawString returned
// with escaped true, into a new slice.
func Unescape(raw []byte) []byte {
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

// ReadNumber reads a number (RFC 8259 grammar) and returns its text, which
// aliases the input.
func (r *Reader) ReadNumber() ([]byte, error) {
	r.ws()
	b, i := r.data, r.pos
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
		return nil, ErrSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, ErrSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, ErrSyntax
		}
	}
	start := r.pos
	r.pos = i
	return b[start:i], nil
}

// ReadLiteral reads true, false or null and returns its kind and, for a
// boolean, its value.
func (r *Reader) ReadLiteral() (k Kind, v bool, err error) {
	r.ws()
	rest := r.data[r.pos:]
	switch {
	case bytes.HasPrefix(rest, []byte("true")):
		r.pos += 4
		return KindBool, true, nil
	case bytes.HasPrefix(rest, []byte("false")):
		r.pos += 5
		return KindBool, false, nil
	case bytes.HasPrefix(rest, []byte("null")):
		r.pos += 4
		return KindNull, false, nil
	}
	return 0, false, ErrSyntax
}

// Skip reads and discards one value of any kind, still checking it strictly:
// syntax, strings, duplicate names and depth.
func (r *Reader) Skip() error {
	switch r.Kind() {
	case KindString:
		_, _, _, err := r.RawString()
		return err
	case KindNumber:
		_, err := r.ReadNumber()
		return err
	case KindBool, KindNull:
		_, _, err := r.ReadLiteral()
		return err
	case KindObject:
		var o Object
		if err := r.OpenObject(&o); err != nil {
			return err
		}
		for {
			_, ok, err := r.Next(&o)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := r.Skip(); err != nil {
				return err
			}
		}
	case KindArray:
		return r.skipArray()
	}
	return ErrSyntax
}

func (r *Reader) skipArray() error {
	r.pos++ // '['
	r.depth++
	if r.depth > r.maxDepth {
		return ErrDepth
	}
	r.ws()
	if r.pos < len(r.data) && r.data[r.pos] == ']' {
		r.pos++
		r.depth--
		return nil
	}
	for {
		if err := r.Skip(); err != nil {
			return err
		}
		r.ws()
		if r.pos >= len(r.data) {
			return ErrSyntax
		}
		switch r.data[r.pos] {
		case ',':
			r.pos++
		case ']':
			r.pos++
			r.depth--
			return nil
		default:
			return ErrSyntax
		}
	}
}

// RawValue is Skip that also returns the text of the value, which aliases
// the input. A Reader over it with maxDepth lowered by the current depth
// reads it under the same limits.
func (r *Reader) RawValue() ([]byte, error) {
	r.ws()
	start := r.pos
	if err := r.Skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos], nil
}

// Depth is the number of objects and arrays the reader is inside.
func (r *Reader) Depth() int { return r.depth }

// nameSet holds the member names of one object as offsets into the input
// (or, for a name with escapes, its unescaped copy), so the common case
// allocates nothing and the input does not escape to the heap. Past a
// handful of names it switches to a map to stay linear.
type nameSet struct {
	small [12]nameSpan
	n     int
	big   map[string]struct{}
}

type nameSpan struct {
	start, end int
	unesc      []byte
}

func (s *nameSpan) name(b []byte) []byte {
	if s.unesc != nil {
		return s.unesc
	}
	return b[s.start:s.end]
}

// add records the name b[start:end] (unesc when it had escapes) and reports
// false if the object already had it.
func (k *nameSet) add(b []byte, start, end int, unesc []byte) bool {
	e := nameSpan{start, end, unesc}
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
