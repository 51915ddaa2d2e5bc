package token

import "errors"

// The claims and the footer are read with internal/strictjson, a strict
// RFC 8259 reader shared with dpop.
//
// Why not encoding/json: it accepts duplicate member names (the last one
// wins), matches member names case-insensitively ("ISS" fills Issuer), and
// replaces invalid UTF-8 and lone surrogates with U+FFFD. Each of those lets
// two parsers read one signed payload differently. strictjson refuses all
// three, compares member names after unescaping ("\u0069ss" is "iss") and
// bounds the nesting depth; the known claims are decoded in the same single
// pass without reflection (claims.go).

// Reasons a document is refused beyond strictjson's. The messages are fixed
// text: they never quote the input.
var (
	errNotObject  = errors.New("not a JSON object")
	errUnexpected = errors.New("unexpected member")
)
