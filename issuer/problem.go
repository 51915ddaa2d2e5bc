package issuer

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/problem"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// Stable error codes of the API (docs/openapi.yaml, Problem.code), from the
// one vocabulary of package problem. Clients switch on these; titles and
// details may be reworded.
const (
	CodeInvalidRequest       = problem.InvalidRequest
	CodeInvalidToken         = problem.InvalidToken
	CodeTokenExpired         = problem.TokenExpired
	CodeTokenRevoked         = problem.TokenRevoked
	CodeInvalidDPoPProof     = problem.InvalidDPoPProof
	CodeUseDPoPNonce         = problem.UseDPoPNonce
	CodeInvalidGrant         = problem.InvalidGrant
	CodeUsernameTaken        = problem.UsernameTaken
	CodeUsernameInvalid      = problem.UsernameInvalid
	CodeRateLimited          = problem.RateLimited
	CodeUnsupportedGrantType = problem.UnsupportedGrantType
	CodeRequestTooLarge      = problem.RequestTooLarge
	CodeUnsupportedMedia     = problem.UnsupportedMedia
	CodeNotFound             = problem.NotFound
	CodeMethodNotAllowed     = problem.MethodNotAllowed
	CodeUnavailable          = problem.Unavailable
	CodeInternal             = problem.Internal
	// CodeUnauthorized: admin API only, no valid admin key.
	CodeUnauthorized = problem.Unauthorized
	// CodeInvalidLinkCode: wrong, expired or used link code (one answer).
	CodeInvalidLinkCode = problem.InvalidLinkCode
	// CodeInvalidRecoveryCode: wrong or used recovery code, or unknown
	// username (one answer).
	CodeInvalidRecoveryCode = problem.InvalidRecoveryCode
)

// apiError is what handlers return for a failure: a status, a stable code
// and the cause (logged, never sent). challenge marks a 401 that carries a
// WWW-Authenticate header; nonce a response that carries a fresh DPoP-Nonce.
type apiError struct {
	status     int
	code       string
	detail     string // what to fix, fixed text; "" = the code's default
	reason     string // username_invalid's sub-code
	cause      error
	retryAfter int // seconds; 0 = no header
	nonce      bool
	challenge  string // WWW-Authenticate of a 401 whose challenge is not DPoP error=code
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.cause.Error()
	}
	return e.code
}

func (e *apiError) Unwrap() error { return e.cause }

func fail(status int, code string, cause error) *apiError {
	return &apiError{status: status, code: code, cause: cause}
}

func errInvalidRequest(cause error) *apiError {
	return fail(http.StatusBadRequest, CodeInvalidRequest, cause)
}

func errUnavailable(cause error) *apiError {
	e := fail(http.StatusServiceUnavailable, CodeUnavailable, cause)
	e.retryAfter = 1
	return e
}

func errInternal(cause error) *apiError {
	return fail(http.StatusInternalServerError, CodeInternal, cause)
}

// errorHandler is the Echo HTTPErrorHandler: every failure, including
// Echo's own (404, 405, 413, bind errors), becomes problem+json.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = s.fromEchoError(err)
	}
	rid := requestID(c)
	if ae.status >= 500 {
		// The cause goes to the log only. Never log request content.
		s.log.LogAttrs(c.Request().Context(), levelFor(ae), "request failed",
			attrRequestID(rid), attrRoute(c), attrCode(ae.code), attrErr(ae.cause))
	} else if ae.cause != nil {
		s.log.LogAttrs(c.Request().Context(), debugLevel, "request refused",
			attrRequestID(rid), attrRoute(c), attrCode(ae.code), attrErr(ae.cause))
	}
	s.writeProblem(c, ae, rid)
}

func (s *Server) fromEchoError(err error) *apiError {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return fail(http.StatusNotFound, CodeNotFound, nil)
		case http.StatusMethodNotAllowed:
			return fail(http.StatusMethodNotAllowed, CodeMethodNotAllowed, nil)
		case http.StatusRequestEntityTooLarge:
			return fail(http.StatusRequestEntityTooLarge, CodeRequestTooLarge, nil)
		case http.StatusUnsupportedMediaType:
			return fail(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, nil)
		case http.StatusServiceUnavailable:
			return errUnavailable(err)
		}
		if he.Code >= 400 && he.Code < 500 {
			return fail(he.Code, CodeInvalidRequest, err)
		}
	}
	return errInternal(err)
}

func (s *Server) writeProblem(c echo.Context, ae *apiError, rid string) {
	p := problem.New(ae.code, ae.status, ae.detail, rid)
	p.Reason = ae.reason
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, problem.ContentType)
	h.Set("Cache-Control", "no-store")
	if ae.status == http.StatusUnauthorized {
		if ae.challenge != "" {
			h.Set("WWW-Authenticate", ae.challenge)
		} else {
			h.Set("WWW-Authenticate", problem.DPoPChallenge(ae.code))
		}
	}
	if ae.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	if ae.nonce && s.nonces != nil {
		h.Set(NonceHeader, s.nonces.Issue())
	}
	b, _ := json.Marshal(p)
	c.Response().WriteHeader(ae.status)
	if c.Request().Method != http.MethodHead {
		_, _ = c.Response().Write(b)
	}
}

// flowError maps a flow's error to a response. Proof failures are 400 on
// the signup and token endpoints (RFC 9449 section 5); every other code
// has its status of package problem.
func flowError(err error) *apiError {
	code := flow.Code(err)
	info, ok := problem.Lookup(code)
	if !ok {
		return errInternal(err)
	}
	status := info.Status
	if code == CodeInvalidDPoPProof || code == CodeUseDPoPNonce {
		status = http.StatusBadRequest
	}
	e := fail(status, code, err)
	e.detail = flow.DetailOf(err)
	switch code {
	case CodeRateLimited:
		rl := errRateLimited(flow.RetryAfterOf(err))
		rl.detail = e.detail // the flow's fixed advice, if any; never the cause
		return rl
	case CodeUseDPoPNonce:
		e.nonce = true
	case CodeUnavailable:
		e.retryAfter = 1
	case CodeUsernameTaken:
		e.cause = nil // nothing to log: an ordinary answer
	case CodeUsernameInvalid:
		e.reason = account.UsernameReason(err)
	}
	return e
}

// authError maps a refusal of the Authenticator (an *httpauth.Error) to a
// response with the same status, code, detail and challenge any other
// httpauth-protected service answers.
func authError(err error) *apiError {
	var he *httpauth.Error
	if !errors.As(err, &he) {
		return errInternal(err)
	}
	e := fail(he.Status, he.Code, authCause{he})
	e.detail = he.Detail
	e.challenge = he.Challenge()
	if he.Status == http.StatusServiceUnavailable {
		e.retryAfter = 1
	}
	return e
}

// authCause logs an *httpauth.Error by its cause's fixed text.
type authCause struct{ e *httpauth.Error }

func (a authCause) Error() string { return a.e.CauseText() }
func (a authCause) Unwrap() error { return a.e }
