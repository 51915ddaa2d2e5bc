package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hallpass/hallpass/problem"
)

// Sentinel errors, tested with errors.Is.
var (
	// ErrNoSession: the store holds no session (never signed up, logged
	// out, or the account deleted). Sign up, Link with a link code from a
	// signed-in device, or Recover with a recovery code.
	ErrNoSession = errors.New("client: no session")
	// ErrAlreadySignedUp: Signup, Link or Recover was called on a client
	// whose store already holds a session. Log out first or use another
	// store.
	ErrAlreadySignedUp = errors.New("client: already signed up")
	// ErrSessionEnded: the server refused the refresh token
	// (invalid_grant): the device session was logged out, signed out,
	// revoked, expired, or a reuse was detected. The account lives on
	// (unless it was deleted): come back to it as a new device, with a new
	// key and an empty store (or this one after Logout, which drops the
	// dead tokens), through a link code made on another of its devices
	// (CreateLinkCode there, Link here) or a recovery code (Recover).
	// Signing up again would make a new, empty account.
	ErrSessionEnded = errors.New("client: session ended by the server")
	// ErrInvalidLinkCode: Link was given a link code that is wrong, expired
	// or already used (the server does not say which). Make a new one on
	// a signed-in device.
	ErrInvalidLinkCode = errors.New("client: invalid link code")
	// ErrInvalidRecoveryCode: Recover was given a username and recovery
	// code that do not match an unused code of that account (a wrong code,
	// a used one and an unknown username are one answer).
	ErrInvalidRecoveryCode = errors.New("client: invalid recovery code")
	// ErrPersist: the state could not be saved. The new tokens are kept in
	// memory (the refresh token is never dropped) and the next call that
	// touches the state tries to save again.
	ErrPersist = errors.New("client: saving the state failed")
	// ErrStateMismatch: the stored state belongs to another server URL or
	// another device key than the client was built with.
	ErrStateMismatch = errors.New("client: stored state does not match this client")
	// ErrStateDecrypt: a FileStore could not open the state file: wrong
	// passphrase or key, or the file was altered.
	ErrStateDecrypt = errors.New("client: cannot decrypt the state file (wrong passphrase or key, or corrupted)")
	// ErrUnsupportedKey: the device key is neither ECDSA P-256 nor Ed25519.
	ErrUnsupportedKey = errors.New("client: device key must be ECDSA P-256 or Ed25519")
	// ErrBadResponse: the server answered with something that is not the
	// documented API (wrong content, missing fields, token_type not DPoP).
	ErrBadResponse = errors.New("client: unexpected response from the server")
	// ErrOtherOrigin: Do was given a request for another scheme, host or
	// port than the server URL; the access token is never sent there.
	ErrOtherOrigin = errors.New("client: request is not for the server URL")
)

// Stable API error codes (the "code" member of the server's problem+json),
// from the one vocabulary of package problem.
const (
	CodeInvalidToken     = problem.InvalidToken
	CodeTokenExpired     = problem.TokenExpired
	CodeTokenRevoked     = problem.TokenRevoked
	CodeInvalidDPoPProof = problem.InvalidDPoPProof
	CodeUseDPoPNonce     = problem.UseDPoPNonce
	CodeInvalidGrant     = problem.InvalidGrant
	CodeUsernameTaken    = problem.UsernameTaken
	CodeUsernameInvalid  = problem.UsernameInvalid
	CodeRateLimited      = problem.RateLimited
	CodeUnavailable      = problem.Unavailable
	// CodeInvalidLinkCode is ErrInvalidLinkCode on the wire.
	CodeInvalidLinkCode = problem.InvalidLinkCode
	// CodeInvalidRecoveryCode is ErrInvalidRecoveryCode on the wire.
	CodeInvalidRecoveryCode = problem.InvalidRecoveryCode
	// CodeDeviceLimit: CreateLinkCode on an account with as many devices
	// as the server allows (live link codes counted); sign one out
	// (RevokeDevice) first.
	CodeDeviceLimit = problem.DeviceLimit
)

// APIError is an error answer of the server (RFC 9457 problem details).
// Error() shows only the status and the stable code; Title and Detail are
// the server's fixed text, kept for display.
type APIError struct {
	Status    int    // HTTP status
	Code      string // stable machine code, e.g. "token_expired"; "" if none was sent
	Title     string
	Detail    string
	RequestID string // on 5xx answers, to quote to the operator
	// RetryAfter is the Retry-After header as a duration, 0 if absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = "http_" + strconv.Itoa(e.Status)
	}
	return fmt.Sprintf("client: server answered %s (HTTP %d)", code, e.Status)
}

// Is makes errors.Is(err, ErrSessionEnded) true for invalid_grant,
// ErrInvalidLinkCode for invalid_link_code and ErrInvalidRecoveryCode for
// invalid_recovery_code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrSessionEnded:
		return e.Code == CodeInvalidGrant
	case ErrInvalidLinkCode:
		return e.Code == CodeInvalidLinkCode
	case ErrInvalidRecoveryCode:
		return e.Code == CodeInvalidRecoveryCode
	}
	return false
}

// ErrorCode returns the server's code of err (an *APIError anywhere in its
// chain), or "".
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 16 << 10

// parseProblem builds an APIError from a non-2xx answer whose body (at most
// maxErrorBody bytes) was read into body. The code comes from the
// problem+json body, or else from the WWW-Authenticate DPoP challenge.
func parseProblem(resp *http.Response, body []byte) *APIError {
	e := &APIError{Status: resp.StatusCode}
	if ct, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil &&
		(ct == problem.ContentType || ct == "application/json") {
		var p struct {
			Code      string `json:"code"`
			Error     string `json:"error"` // OAuth 2.0 style (RFC 6749 section 5.2)
			Title     string `json:"title"`
			Detail    string `json:"detail"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal(body, &p) == nil {
			e.Code = p.Code
			if e.Code == "" {
				e.Code = p.Error
			}
			e.Title, e.Detail, e.RequestID = clean(p.Title, 200), clean(p.Detail, 500), clean(p.RequestID, 100)
		}
	}
	if e.Code == "" {
		e.Code = challengeError(resp.Header.Values("WWW-Authenticate"))
	}
	if !validCode(e.Code) {
		e.Code = ""
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 86400 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// validCode accepts the shape of the API's codes only, so a hostile server
// cannot put arbitrary text into our error strings and logs.
func validCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// clean keeps printable text only, bounded.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

// challengeError extracts error="..." from a DPoP WWW-Authenticate
// challenge (RFC 9449 section 7.1). It is a small parser for the one
// parameter we need, not a general RFC 9110 auth-param parser.
func challengeError(values []string) string {
	for _, v := range values {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "DPoP") {
			continue
		}
		for p := range strings.SplitSeq(params, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "error") {
				continue
			}
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return ""
}
