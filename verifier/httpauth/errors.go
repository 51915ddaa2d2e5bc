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
	"strconv"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/problem"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/verifier"
)

// Stable codes of an *Error, from the one vocabulary of package problem
// (docs/openapi.yaml).
const (
	CodeInvalidToken     = problem.InvalidToken     // missing, malformed, not authentic, or a claim rule failed
	CodeTokenExpired     = problem.TokenExpired     // refresh the token
	CodeTokenRevoked     = problem.TokenRevoked     // the token, its device, account or signing key is revoked
	CodeInvalidDPoPProof = problem.InvalidDPoPProof // missing, malformed, replayed, or not for this request or key
	CodeUseDPoPNonce     = problem.UseDPoPNonce     // retry with the nonce in Error.Nonce (DPoP-Nonce header)
	CodeUnavailable      = problem.Unavailable      // 503: a replay cache, key source or revocation check did not answer
	CodeInternal         = problem.Internal         // 500: misconfiguration
	CodeRateLimited      = problem.RateLimited      // 429: this proof key sent more live proofs than its share
	CodeInvalidRequest   = problem.InvalidRequest   // 400: the request path is not an absolute path, or has a dot segment
)

// detailNoProof says what to fix when the DPoP header is missing.
const detailNoProof = "A DPoP-bound token needs exactly one DPoP header with a fresh proof for this request (with ath)."

// Causes of refusals found before the token is verified; they are in the
// chain of the *Error (errors.Is) and in the log, never in a response.
var (
	ErrNoToken       = errors.New("httpauth: no Authorization header")
	ErrAuthorization = errors.New("httpauth: malformed or unsupported Authorization header")
	ErrBearer        = errors.New("httpauth: bearer tokens are not allowed")
	ErrNoProof       = errors.New("httpauth: missing or repeated DPoP header")
	ErrConfig        = errors.New("httpauth: invalid configuration")
	ErrPath          = errors.New("httpauth: request path is not an absolute path in normal form")
)

// detailPath says what to fix in a path with a dot segment.
const detailPath = "The request path must be an absolute path without . or .. segments."

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
	// Detail, when not empty, says what to fix (for example which URL a
	// proof's htu must name). It is fixed text or the server's own
	// configuration, never request content.
	Detail string

	noCredentials bool // 401 without credentials: challenge without error=
	cause         error
}

func (e *Error) Error() string { return "httpauth: " + e.Code }
func (e *Error) Unwrap() error { return e.cause }

// Problem is an RFC 9457 problem details object, as every hallpass server
// writes it.
type Problem = problem.Details

// Problem returns the problem details of e. An unknown code gets the
// internal error's text.
func (e *Error) Problem() Problem {
	return problem.New(e.Code, e.Status, e.Detail, e.RequestID)
}

// Challenge returns the WWW-Authenticate value of a 401 (RFC 9449 section
// 7.1), "" for other statuses.
func (e *Error) Challenge() string {
	if e.Status != http.StatusUnauthorized {
		return ""
	}
	if e.noCredentials {
		return problem.DPoPChallenge("")
	}
	return problem.DPoPChallenge(e.Code)
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
	h.Set("Content-Type", problem.ContentType)
	h.Set("Cache-Control", "no-store")
	if c := e.Challenge(); c != "" {
		h.Set("WWW-Authenticate", c)
	}
	if e.Nonce != "" {
		h.Set(dpop.NonceHeader, e.Nonce)
	}
	switch e.Status {
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	case http.StatusTooManyRequests:
		h.Set("Retry-After", strconv.Itoa(int(dpop.DefaultMaxAge/time.Second)))
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
			e.Code, e.Detail = CodeInvalidDPoPProof, detailNoProof
			return e
		}
		switch dpop.ErrorCode(err) {
		case dpop.CodeUseNonce:
			e.Code, e.Detail = CodeUseDPoPNonce, dpop.Detail(err)
			return e
		case dpop.CodeInvalidProof:
			e.Code, e.Detail = CodeInvalidDPoPProof, a.proofDetail(err)
			return e
		}
		if errors.Is(err, dpop.ErrReplayKeyQuota) {
			// This key holds its share of the replay cache: its own
			// flood, answered as such; other keys go on.
			e.Status, e.Code = http.StatusTooManyRequests, CodeRateLimited
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
		if errors.Is(err, revocation.ErrStale) || errors.Is(err, verifier.ErrRevocationUnavailable) {
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

// proofDetail says what to fix in a refused proof. For a URL mismatch it
// names the public URL the server is configured with (its own
// configuration, not request content): the usual cause is a client that
// builds htu from another host name for the same server.
func (a *Authenticator) proofDetail(err error) string {
	d := dpop.Detail(err)
	if errors.Is(err, dpop.ErrURL) && a.base != "" {
		d += " This server's public URL is " + a.base + "; htu is that URL followed by the request path."
	}
	return d
}

// CauseText is the cause of e as fixed text, safe to log: the texts of
// verifier, dpop, revocation and this package never carry token or proof
// content.
func (e *Error) CauseText() string { return causeText(e.cause) }

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
