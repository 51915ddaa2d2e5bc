package issuer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"unicode/utf8"
)

// Request-parsing errors. Their text is fixed; none quotes the input.
var (
	errBadJSON      = errors.New("body is not a single JSON object")
	errDuplicate    = errors.New("duplicate member in body")
	errUnknownField = errors.New("unknown member in body")
	errNotString    = errors.New("member is not a string")
	errNotBool      = errors.New("member is not a boolean")
	errBadForm      = errors.New("body is not valid form encoding")
)

// decodeStringObject parses body as one JSON object whose members in
// allowed are strings, refusing duplicates (encoding/json would keep the
// last one, and a proxy that keeps the first would see another request),
// trailing data and invalid UTF-8. Other members are refused when strict,
// else skipped (OAuth 2.0 token requests ignore unknown parameters).
func decodeStringObject(body []byte, strict bool, allowed ...string) (map[string]string, error) {
	return decodeObject(body, strict, allowed, nil)
}

// decodeObject is decodeStringObject where the members in bools are JSON
// booleans, returned as "true" or "false".
func decodeObject(body []byte, strict bool, allowed, bools []string) (map[string]string, error) {
	if !utf8.Valid(body) {
		return nil, errBadJSON
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errBadJSON
	}
	out := make(map[string]string, len(allowed))
	seen := make(map[string]struct{}, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errBadJSON
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errBadJSON
		}
		if _, dup := seen[name]; dup {
			return nil, errDuplicate
		}
		seen[name] = struct{}{}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errBadJSON
		}
		if !contains(allowed, name) {
			if strict {
				return nil, errUnknownField
			}
			continue
		}
		v, err := memberValue(raw, contains(bools, name))
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errBadJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errBadJSON
	}
	return out, nil
}

// memberValue is a string member's value, or a boolean member's as "true"
// or "false".
func memberValue(raw json.RawMessage, boolean bool) (string, error) {
	if boolean {
		switch string(raw) {
		case "true", "false":
			return string(raw), nil
		}
		return "", errNotBool
	}
	var v string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		return "", errNotString
	}
	return v, nil
}

// decodeForm parses an application/x-www-form-urlencoded body: each allowed
// parameter at most once (RFC 6749 section 3.2), others ignored.
func decodeForm(body []byte, allowed ...string) (map[string]string, error) {
	if !utf8.Valid(body) {
		return nil, errBadForm
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errBadForm
	}
	out := make(map[string]string, len(vals))
	for k, v := range vals {
		if !contains(allowed, k) {
			continue
		}
		if len(v) != 1 {
			return nil, errDuplicate
		}
		if !utf8.ValidString(v[0]) {
			return nil, errBadForm
		}
		out[k] = v[0]
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
