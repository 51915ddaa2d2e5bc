package verifier

import (
	"errors"

	"github.com/hallpass/hallpass/problem"
)

// Stable codes returned by Code, for HTTP responses and CLI output. The
// first four are the codes of the same name in package problem;
// CodeServerError is this package's own class of "not the token's fault"
// and never goes on the wire (an HTTP layer answers 500 or 503).
const (
	CodeInvalidToken     = problem.InvalidToken     // malformed, unknown key, bad signature or claims, or a rule other than below
	CodeTokenExpired     = problem.TokenExpired     // exp passed
	CodeTokenRevoked     = problem.TokenRevoked     // the token or its signing key is revoked
	CodeInvalidDPoPProof = problem.InvalidDPoPProof // the device-binding check failed
	CodeServerError      = "server_error"           // not the token's fault: a key source or configuration failed
)

// verr is a sentinel error: fixed text, a stable code, and a class
// (ErrTokenInvalid or ErrTokenRejected) that errors.Is also matches.
type verr struct {
	msg   string
	code  string
	class error
}

func (e *verr) Error() string        { return e.msg }
func (e *verr) Is(target error) bool { return e.class != nil && target == e.class }

// The two classes. Every token error is exactly one of them.
var (
	// ErrTokenInvalid: the token is malformed or not authentic (too large,
	// bad header or footer, unknown or revoked key, bad signature, malformed
	// claims). Nothing in it can be trusted.
	ErrTokenInvalid error = &verr{"verifier: invalid token", CodeInvalidToken, nil}
	// ErrTokenRejected: the token is authentic and well formed, but a rule
	// failed (time, issuer, audience, revocation, device binding).
	ErrTokenRejected error = &verr{"verifier: token rejected", CodeInvalidToken, nil}
)

// Sentinel errors, tested with errors.Is. Their text is fixed: no error from
// this package carries token content, claim values or key material, and the
// errors of a KeySource, RevocationChecker or BindingChecker are kept in the
// chain (errors.Is, errors.As) but not in the text.
var (
	ErrTooLarge         error = &verr{"verifier: token too large", CodeInvalidToken, ErrTokenInvalid}
	ErrMalformed        error = &verr{"verifier: malformed token", CodeInvalidToken, ErrTokenInvalid}
	ErrUnknownKey       error = &verr{"verifier: unknown signing key", CodeInvalidToken, ErrTokenInvalid}
	ErrKeyRevoked       error = &verr{"verifier: signing key revoked", CodeTokenRevoked, ErrTokenInvalid}
	ErrInvalidSignature error = &verr{"verifier: invalid signature", CodeInvalidToken, ErrTokenInvalid}
	ErrInvalidClaims    error = &verr{"verifier: invalid claims", CodeInvalidToken, ErrTokenInvalid}

	ErrExpired        error = &verr{"verifier: token expired", CodeTokenExpired, ErrTokenRejected}
	ErrNotYetValid    error = &verr{"verifier: token not yet valid", CodeInvalidToken, ErrTokenRejected}
	ErrIssuedInFuture error = &verr{"verifier: token issued in the future", CodeInvalidToken, ErrTokenRejected}
	ErrIssuer         error = &verr{"verifier: unexpected issuer", CodeInvalidToken, ErrTokenRejected}
	ErrAudience       error = &verr{"verifier: unexpected audience", CodeInvalidToken, ErrTokenRejected}
	ErrRevoked        error = &verr{"verifier: token revoked", CodeTokenRevoked, ErrTokenRejected}
	ErrBinding        error = &verr{"verifier: device binding failed", CodeInvalidDPoPProof, ErrTokenRejected}

	// ErrKeySource: the KeySource failed for another reason than an unknown
	// or revoked kid (for example a key-set fetch failed). The token is
	// refused; it is not known to be bad.
	ErrKeySource error = &verr{"verifier: key source failed", CodeServerError, nil}
	// ErrKeySet: a key-set document or key list is invalid.
	ErrKeySet error = &verr{"verifier: invalid key set", CodeServerError, nil}
	// ErrRevocationUnavailable: a RevocationChecker wraps it when it could
	// not decide (its store did not answer). The token is refused as
	// ErrRevoked, as every checker error is, but an HTTP layer answers 503
	// "retry later", not a verdict on the token.
	ErrRevocationUnavailable error = &verr{"verifier: revocation check unavailable", CodeServerError, nil}
	// ErrConfig: New was given invalid arguments or options.
	ErrConfig error = &verr{"verifier: invalid configuration", CodeServerError, nil}
)

// causeError attaches a foreign error (from a KeySource or a checker) to a
// sentinel without putting its text in the message: such text may quote the
// token.
type causeError struct {
	sentinel error
	cause    error
}

func (e *causeError) Error() string   { return e.sentinel.Error() }
func (e *causeError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// Code maps an error from this package to a stable code: the code of the
// outermost sentinel in its chain, CodeServerError for any other error, and
// "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *verr
	if errors.As(err, &e) {
		return e.code
	}
	return CodeServerError
}
