package httpauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/verifier"
)

// Stable codes of an *Error, as the issuer uses them (docs/openapi.yaml).
const (
	CodeInvalidToken     = "invalid_token"      // missing, malformed, not authentic, or a claim rule failed
	CodeTokenExpired     = "token_expired"      // refresh the token
	CodeTokenRevoked     = "token_revoked"      // the token, its device, account or signing key is revoked
	CodeInvalidDPoPProof = "invalid_dpop_proof" // missing, malformed, replayed, or not for this request or key
	CodeUseDPoPNonce     = "use_dpop_nonce"     // retry with the nonce in Error.Nonce (DPoP-Nonce header)
	CodeUnavailable      = "unavailable"        // 503: a replay cache, key source or revocation mirror did not answer
	CodeInternal         = "internal_error"     // 500: misconfiguration
)

// Causes of refusals found before the token is verified; they are in the
// chain of the *Error (errors.Is) and in the log, never in a response.
var (
	ErrNoToken       = errors.New("httpauth: no Authorization header")
	ErrAuthorization = errors.New("httpauth: malformed or unsupported Authorization header")
	ErrBearer        = errors.New("httpauth: bearer tokens are not allowed")
	ErrNoProof       = errors.New("httpauth: missing or repeated DPoP header")
	ErrConfig        = errors.New("httpauth: invalid configuration")
)

// Error is a refused request: an HTTP status, a stable code and, for
// use_dpop_nonce, a fresh nonce to send back. Its text is the code only;
// the cause (errors.Is, errors.As, Unwrap) is for logs.
type Error struct {
	Status int    // 401, 500 or 503
	Code   string // one of the Code... constants
	// Nonce is the next server nonce, sent as DPoP-Nonce (set on
	// use_dpop_nonce when the Authenticator has Config.Nonces).
	Nonce string
	// RequestID identifies a 5xx in the log; it goes into the response.
	RequestID string

	noCredentials bool // 401 without credentials: challenge without error=
	cause         error
}

func (e *Error) Error() string { return "httpauth: " + e.Code }
func (e *Error) Unwrap() error { return e.cause }

// Problem is an RFC 9457 problem details object, as the issuer writes it.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id,omitempty"`
}

// problemText: the issuer's fixed titles and details (issuer/problem.go).
var problemText = map[string][2]string{
	CodeInvalidToken:     {"Invalid access token", "The access token is missing, malformed, not signed by this issuer or not meant for this audience."},
	CodeTokenExpired:     {"Access token expired", "The access token has expired; refresh it."},
	CodeTokenRevoked:     {"Access token revoked", "The device of this access token has logged out or was revoked."},
	CodeInvalidDPoPProof: {"Invalid DPoP proof", "The DPoP proof is missing, malformed, replayed, or not valid for this request or key."},
	CodeUseDPoPNonce:     {"DPoP nonce required", "Retry with a DPoP proof carrying the nonce from the DPoP-Nonce header."},
	CodeUnavailable:      {"Service unavailable", "A backing service did not answer in time; nothing was changed. Retry later."},
	CodeInternal:         {"Internal error", "The server failed to handle the request."},
}

// Problem returns the problem details of e. An unknown code gets the
// internal error's text.
func (e *Error) Problem() Problem {
	txt, ok := problemText[e.Code]
	if !ok {
		txt = problemText[CodeInternal]
	}
	p := Problem{Type: "urn:hallpass:problem:" + e.Code, Title: txt[0], Status: e.Status, Code: e.Code, Detail: txt[1]}
	if e.Status >= 500 {
		p.RequestID = e.RequestID
	}
	return p
}

// Challenge returns the WWW-Authenticate value of a 401 (RFC 9449 section
// 7.1), "" for other statuses.
func (e *Error) Challenge() string {
	if e.Status != http.StatusUnauthorized {
		return ""
	}
	if e.noCredentials {
		return `DPoP algs="ES256 EdDSA"`
	}
	return `DPoP error="` + e.Code + `", algs="ES256 EdDSA"`
}

// WriteProblem answers a refused request: application/problem+json with
// the status and code of err (an *Error; anything else is answered as a
// 500 internal_error without detail), Cache-Control: no-store, and
// WWW-Authenticate on 401, DPoP-Nonce with a nonce, Retry-After on 503.
func WriteProblem(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal}
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if c := e.Challenge(); c != "" {
		h.Set("WWW-Authenticate", c)
	}
	if e.Nonce != "" {
		h.Set(dpop.NonceHeader, e.Nonce)
	}
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	b, _ := json.Marshal(e.Problem())
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// tokenError maps an error of VerifyBound or Verify to an *Error.
func (a *Authenticator) tokenError(err error) *Error {
	e := &Error{Status: http.StatusUnauthorized, cause: err}
	if errors.Is(err, verifier.ErrBinding) {
		if errors.Is(err, ErrNoProof) {
			e.Code = CodeInvalidDPoPProof
			return e
		}
		switch dpop.ErrorCode(err) {
		case dpop.CodeUseNonce:
			e.Code = CodeUseDPoPNonce
			return e
		case dpop.CodeInvalidProof:
			e.Code = CodeInvalidDPoPProof
			return e
		}
		if errors.Is(err, dpop.ErrReplayCheck) {
			e.Status, e.Code = http.StatusServiceUnavailable, CodeUnavailable
			return e
		}
		e.Status, e.Code = http.StatusInternalServerError, CodeInternal
		return e
	}
	switch verifier.Code(err) {
	case verifier.CodeTokenExpired:
		e.Code = CodeTokenExpired
	case verifier.CodeTokenRevoked:
		e.Code = CodeTokenRevoked
		if errors.Is(err, revocation.ErrStale) {
			// The mirror cannot vouch for the token: fail closed, as
			// "retry later", not as a verdict on the token.
			e.Status, e.Code = http.StatusServiceUnavailable, CodeUnavailable
		}
	case verifier.CodeInvalidDPoPProof:
		e.Code = CodeInvalidDPoPProof
	case verifier.CodeInvalidToken:
		e.Code = CodeInvalidToken
	default:
		if errors.Is(err, verifier.ErrKeySource) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			e.Status, e.Code = http.StatusServiceUnavailable, CodeUnavailable
		} else {
			e.Status, e.Code = http.StatusInternalServerError, CodeInternal
		}
	}
	return e
}

// fail completes e (nonce, request id) and logs it.
func (a *Authenticator) fail(ctx context.Context, e *Error) *Error {
	if e.Code == CodeUseDPoPNonce && a.nonces != nil {
		e.Nonce = a.nonces.Issue()
	}
	if e.Status >= 500 {
		e.RequestID = newRequestID(a.rand)
		a.log.LogAttrs(ctx, slog.LevelError, "hallpass authentication failed",
			slog.String("request_id", e.RequestID), slog.String("code", e.Code), slog.String("err", causeText(e.cause)))
	} else if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.LogAttrs(ctx, slog.LevelDebug, "hallpass authentication refused",
			slog.String("code", e.Code), slog.String("err", causeText(e.cause)))
	}
	return e
}

// causeText is the text of a cause for the log. Errors of verifier, dpop,
// revocation and this package have fixed text; the verifier keeps a foreign
// cause out of its text (it may quote the token), and only the causes of a
// binding (dpop's) or revocation (the mirror's) failure are added here.
func causeText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		if es := u.Unwrap(); len(es) == 2 && (es[0] == verifier.ErrBinding || es[0] == verifier.ErrRevoked) {
			s += ": " + es[1].Error()
		}
	}
	return s
}

// newRequestID returns 96 random bits, base64url, as the issuer does.
func newRequestID(r io.Reader) string {
	if r == nil {
		r = rand.Reader
	}
	var b [12]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "unavailable"
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
