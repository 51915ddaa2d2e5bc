package dpop

import (
	"fmt"

	"github.com/hallpass/hallpass/internal/strictjson"
)

// The two small JSON objects of a proof (the JOSE header and the claims) are
// read with internal/strictjson: exactly RFC 8259 JSON (checked against
// encoding/json by FuzzJSONObject here and FuzzReader there), refusing
// duplicate member names at any depth (after unescaping, so "t\u0079p"
// duplicates "typ"), invalid UTF-8 and lone UTF-16 surrogates. This package
// adds its bounds: nesting deeper than maxJSONDepth and objects with more
// than maxJSONMembers members are refused, and so is anything but one object
// with optional whitespace around it.
//
// encoding/json is not used because it keeps the last of duplicate members,
// matches member names case-insensitively, and a json.Decoder token walk
// costs about as much as a third of an ECDSA verification (see doc.go).

const (
	maxJSONDepth   = 8
	maxJSONMembers = 32
)

var (
	errJSON        = fmt.Errorf("%w: invalid JSON", ErrMalformed)
	errJSONUTF8    = fmt.Errorf("%w: invalid UTF-8 or lone surrogate", ErrMalformed)
	errJSONDepth   = fmt.Errorf("%w: JSON nested too deeply", ErrMalformed)
	errJSONMembers = fmt.Errorf("%w: too many JSON members", ErrMalformed)
)

// jsonErr maps a strictjson error to this package's errors.
func jsonErr(err error) error {
	switch err {
	case nil:
		return nil
	case strictjson.ErrDuplicate:
		return ErrDuplicateKey
	case strictjson.ErrUTF8:
		return errJSONUTF8
	case strictjson.ErrDepth:
		return errJSONDepth
	case strictjson.ErrTooMany:
		return errJSONMembers
	}
	return errJSON
}

// jsonReader is a strictjson.Reader that returns this package's errors and
// strings.
type jsonReader struct {
	strictjson.Reader
}

// newJSONReader reads data under this package's limits, as if it were
// nested depth levels deep.
func newJSONReader(data []byte, depth int) jsonReader {
	return jsonReader{strictjson.NewReader(data, maxJSONDepth-depth, maxJSONMembers)}
}

// openObject starts reading an object; next then returns its members.
func (r *jsonReader) openObject(o *strictjson.Object) error {
	if r.Kind() != strictjson.KindObject {
		return errJSON
	}
	return jsonErr(r.OpenObject(o))
}

// next returns the name of the next member of o, with the reader at its
// value, which the caller must consume; ok is false at the end of o.
func (r *jsonReader) next(o *strictjson.Object) (name []byte, ok bool, err error) {
	name, ok, err = r.Next(o)
	return name, ok, jsonErr(err)
}

func (r *jsonReader) readString() (string, error) {
	b, err := r.ReadString()
	if err != nil {
		return "", jsonErr(err)
	}
	return intern(b), nil
}

func (r *jsonReader) readNumber() (string, error) {
	b, err := r.ReadNumber()
	if err != nil {
		return "", jsonErr(err)
	}
	return string(b), nil
}

// skip reads and discards any value, still checking it strictly.
func (r *jsonReader) skip() error { return jsonErr(r.Skip()) }

// end checks that only whitespace follows the top-level object.
func (r *jsonReader) end() error { return jsonErr(r.End()) }

// intern returns the values this package looks for without allocating
// (the compiler does not allocate for a switch on string(b)).
func intern(b []byte) string {
	switch string(b) {
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

// readStringOrSkip reads a string value; a value of any other type is
// skipped (still checked strictly) and ok is false.
func (r *jsonReader) readStringOrSkip() (s string, ok bool, err error) {
	if r.Kind() != strictjson.KindString {
		return "", false, r.skip()
	}
	s, err = r.readString()
	return s, true, err
}
