package flow

import (
	"errors"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/problem"
)

// Error is a refused or failed flow: a stable code of package problem, an
// optional fixed detail that says what to fix, and the cause (for logs,
// never for responses). errors.Is(err, ErrInvalidGrant) and the like match
// on the code.
type Error struct {
	Code   string
	Detail string
	Err    error
	// RetryAfter, on rate_limited, is how long to wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "flow: " + e.Code + ": " + e.Err.Error()
	}
	return "flow: " + e.Code
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches a sentinel of this package by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Err == nil && t.Detail == "" && t.Code == e.Code
}

// RetryAfterOf returns the RetryAfter of an *Error in err's chain, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// Sentinels, tested with errors.Is.
var (
	ErrInvalidRequest  = &Error{Code: problem.InvalidRequest}
	ErrUsernameInvalid = &Error{Code: problem.UsernameInvalid}
	ErrUsernameTaken   = &Error{Code: problem.UsernameTaken}
	ErrInvalidGrant    = &Error{Code: problem.InvalidGrant}
	ErrInvalidProof    = &Error{Code: problem.InvalidDPoPProof}
	ErrUseNonce        = &Error{Code: problem.UseDPoPNonce}
	ErrTokenRevoked    = &Error{Code: problem.TokenRevoked}
	ErrNotFound        = &Error{Code: problem.NotFound}
	// ErrDeviceLimit: the account has Config.MaxDevices active devices,
	// live link codes counted; a device must be signed out first.
	ErrDeviceLimit = &Error{Code: problem.DeviceLimit}
	// ErrUnavailable: a store, the replay cache or the key ring did not
	// answer (or no signing key is loaded); nothing was changed. Retry.
	// One exception, marked by its Detail: the store step after a
	// revocation entry failed after its retries (endStep), so the entry
	// is in force but the store change was not made.
	ErrUnavailable = &Error{Code: problem.Unavailable}
	ErrInternal    = &Error{Code: problem.Internal}
)

func fail(sentinel *Error, cause error) *Error {
	return &Error{Code: sentinel.Code, Err: cause}
}

// Code returns the problem code of err: the code of an *Error in its chain,
// problem.Internal for any other error, "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return problem.Internal
}

// DetailOf returns the detail of an *Error in err's chain, or "".
func DetailOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return ""
}

// proofError maps a dpop.Verify error: a verdict on the proof, or
// ErrUnavailable when the replay cache could not answer, or ErrInternal
// for a configuration error.
func proofError(err error, base string) *Error {
	switch dpop.ErrorCode(err) {
	case dpop.CodeUseNonce:
		return &Error{Code: problem.UseDPoPNonce, Detail: dpop.Detail(err), Err: err}
	case dpop.CodeInvalidProof:
		d := dpop.Detail(err)
		if errors.Is(err, dpop.ErrURL) {
			d += " This server's public URL is " + base + "; htu is that URL followed by the request path."
		}
		return &Error{Code: problem.InvalidDPoPProof, Detail: d, Err: err}
	}
	if errors.Is(err, dpop.ErrReplayKeyQuota) {
		// This key sent more live proofs than its share: its own doing.
		return &Error{Code: problem.RateLimited, Err: err, RetryAfter: dpop.DefaultMaxAge}
	}
	if errors.Is(err, dpop.ErrReplayCheck) {
		return fail(ErrUnavailable, err)
	}
	return fail(ErrInternal, err)
}
