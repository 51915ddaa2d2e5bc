// Package strictjson is the strict, allocation-light JSON reader shared by
// the token and dpop parsers of untrusted input (token claims and footers,
// DPoP headers and claims).
//
// It accepts exactly RFC 8259 JSON (checked against encoding/json by
// FuzzReader) and in addition refuses:
//   - duplicate member names at any depth, compared after unescaping (so
//     "t\u0079p" duplicates "typ"); names are matched exactly, never
//     case-insensitively,
//   - invalid UTF-8 and lone UTF-16 surrogates in strings, rather than
//     replacing them, so two different byte strings never decode to the same
//     value,
//   - nesting deeper than a caller-set limit and, when the caller sets one,
//     objects with more members than a limit (both bound the work an attacker
//     can cause).
//
// encoding/json is not used because it keeps the last of duplicate members,
// matches member names case-insensitively and replaces invalid UTF-8; each of
// those lets two parsers read one signed document differently. It is also
// several times slower than this reader on the small documents of a token.
//
// The reader is a cursor: the caller walks objects member by member with
// [Reader.OpenObject] and [Reader.Next] and reads each value with the typed
// readers or [Reader.Skip], which still validates what it discards. Which
// members are required, their types and any further rules belong to the
// caller. Errors are the fixed sentinels below: they never quote the input.
package strictjson
