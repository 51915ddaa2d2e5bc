package dpop

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// normalizeURL returns the normal form of an absolute http or https URL for
// comparing a proof's htu with the request URL (RFC 9449 section 4.3 point 9:
// syntax-based and scheme-based normalisation of RFC 3986 sections 6.2.2 and
// 6.2.3), without query and fragment:
//
//   - scheme and host lowercased; the default port (80, 443) and an empty
//     port removed, a port written with leading zeros reduced to its value;
//   - percent-encoded unreserved characters decoded (%7E -> ~), other
//     percent-encodings upper-cased (%2f -> %2F, never decoded to /), bytes
//     that may not appear raw in a path (space, quotes, non-ASCII...)
//     percent-encoded;
//   - dot segments removed (RFC 3986 section 5.2.4); an empty path is "/".
//
// It refuses userinfo (https://user@host/ can be made to look like another
// host), other schemes, control characters, hosts with characters outside
// the unreserved set, IPv6 zones, and malformed ports or percent-encodings.
// The result is compared for equality only: never by prefix.
func normalizeURL(s string) (string, error) {
	s = stripQueryAndFragment(s)
	if err := checkURLBytes(s); err != nil {
		return "", err
	}
	rawScheme, scheme, rest, err := splitScheme(s)
	if err != nil {
		return "", err
	}
	authority, path, err := splitAuthority(rest)
	if err != nil {
		return "", err
	}
	host, port, err := normalizeAuthority(authority)
	if err != nil {
		return "", err
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	np, err := normalizePath(path)
	if err != nil {
		return "", err
	}
	// Common case: s is already in normal form; return it without copying.
	if rawScheme == scheme && port == "" && authority == host && np == path {
		return s, nil
	}
	return joinURL(scheme, host, port, np), nil
}

// stripQueryAndFragment drops the query and fragment, which are not part of
// htu: the fragment starts at the first '#', the query at the first '?'
// before it.
func stripQueryAndFragment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i]
	}
	return s
}

// checkURLBytes refuses control characters, space and DEL anywhere in s.
func checkURLBytes(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: control character or space in URL", ErrURL)
		}
	}
	return nil
}

// splitScheme splits s after its scheme, which must be http or https in any
// case; scheme is the lowercase name, raw the text as written.
func splitScheme(s string) (raw, scheme, rest string, err error) {
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return "", "", "", fmt.Errorf("%w: not an absolute URL", ErrURL)
	}
	raw = s[:colon]
	switch {
	case strings.EqualFold(raw, "https"):
		scheme = "https"
	case strings.EqualFold(raw, "http"):
		scheme = "http"
	default:
		return "", "", "", fmt.Errorf("%w: scheme is not http or https", ErrURL)
	}
	return raw, scheme, s[colon+1:], nil
}

// splitAuthority splits "//authority/path", refusing a missing authority and
// userinfo.
func splitAuthority(rest string) (authority, path string, err error) {
	if !strings.HasPrefix(rest, "//") {
		return "", "", fmt.Errorf("%w: URL has no authority", ErrURL)
	}
	rest = rest[2:]
	authority = rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return "", "", fmt.Errorf("%w: URL has userinfo", ErrURL)
	}
	return authority, path, nil
}

// joinURL builds scheme://host[:port]path in one allocation.
func joinURL(scheme, host, port, path string) string {
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(host) + 1 + len(port) + len(path))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	return b.String()
}

// normalizeAuthority splits host[:port], lowercases the host and returns the
// port as a decimal number without leading zeros ("" when absent or empty).
func normalizeAuthority(a string) (host, port string, err error) {
	var rawPort string
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", fmt.Errorf("%w: malformed IP literal", ErrURL)
		}
		lit := a[1:end]
		addr, perr := netip.ParseAddr(lit)
		if perr != nil || !addr.Is6() || addr.Zone() != "" {
			return "", "", fmt.Errorf("%w: malformed IP literal", ErrURL)
		}
		host = "[" + strings.ToLower(lit) + "]"
		after := a[end+1:]
		if after != "" {
			if after[0] != ':' {
				return "", "", fmt.Errorf("%w: malformed authority", ErrURL)
			}
			rawPort = after[1:]
		}
	} else {
		h := a
		if i := strings.IndexByte(a, ':'); i >= 0 {
			h, rawPort = a[:i], a[i+1:]
		}
		if host, err = normalizeRegName(h); err != nil {
			return "", "", err
		}
	}
	if rawPort == "" {
		return host, "", nil
	}
	for i := 0; i < len(rawPort); i++ {
		if rawPort[i] < '0' || rawPort[i] > '9' {
			return "", "", fmt.Errorf("%w: malformed port", ErrURL)
		}
	}
	digits := strings.TrimLeft(rawPort, "0")
	n, perr := strconv.ParseUint(digits, 10, 16)
	if perr != nil || n == 0 {
		return "", "", fmt.Errorf("%w: malformed port", ErrURL)
	}
	return host, digits, nil
}

// normalizeRegName lowercases a host name, decoding percent-encoded
// unreserved characters; anything outside the unreserved set is refused.
func normalizeRegName(h string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("%w: empty host", ErrURL)
	}
	plain := true
	for i := 0; i < len(h); i++ {
		if c := h[i]; !isUnreserved(c) || (c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return h, nil
	}
	var b []byte
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c == '%' {
			v, ok := unhex2(h, i+1)
			if !ok || !isUnreserved(v) {
				return "", fmt.Errorf("%w: malformed host", ErrURL)
			}
			c = v
			i += 2
		} else if !isUnreserved(c) {
			return "", fmt.Errorf("%w: malformed host", ErrURL)
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b), nil
}

// normalizePath applies percent-encoding normalisation and dot-segment
// removal to an absolute path (or "").
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	plain := true
	for i := 0; i < len(p); i++ {
		if c := p[i]; !(isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/') {
			plain = false
			break
		}
	}
	if plain {
		return removeDotSegments(p), nil
	}
	b := make([]byte, 0, len(p)+8)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			v, ok := unhex2(p, i+1)
			if !ok {
				return "", fmt.Errorf("%w: malformed percent-encoding", ErrURL)
			}
			i += 2
			if isUnreserved(v) {
				b = append(b, v)
			} else {
				b = appendPct(b, v)
			}
		case isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/':
			b = append(b, c)
		default:
			b = appendPct(b, c)
		}
	}
	return removeDotSegments(string(b)), nil
}

// removeDotSegments is RFC 3986 section 5.2.4 for an absolute path.
func removeDotSegments(in string) string {
	if !strings.Contains(in, ".") {
		return in
	}
	var out []string // output segments, each starting with '/'
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "/..":
			in = "/"
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "." || in == "..":
			in = ""
		default:
			// Move the first segment (with its leading '/', if any) to out.
			j := strings.IndexByte(in[1:], '/')
			if j < 0 {
				out = append(out, in)
				in = ""
			} else {
				out = append(out, in[:j+1])
				in = in[j+1:]
			}
		}
	}
	res := strings.Join(out, "")
	if res == "" {
		return "/"
	}
	return res
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

func unhex2(s string, i int) (byte, bool) {
	if i+2 > len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i])
	lo, ok2 := unhex(s[i+1])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func appendPct(b []byte, c byte) []byte {
	const hexUpper = "0123456789ABCDEF"
	return append(b, '%', hexUpper[c>>4], hexUpper[c&15])
}
