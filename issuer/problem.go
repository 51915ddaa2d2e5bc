package issuer

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Stable error codes of the API (docs/openapi.yaml, Problem.code). Clients
// switch on these; titles and details may be reworded.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidToken         = "invalid_token"
	CodeTokenExpired         = "token_expired"
	CodeTokenRevoked         = "token_revoked"
	CodeInvalidDPoPProof     = "invalid_dpop_proof"
	CodeUseDPoPNonce         = "use_dpop_nonce"
	CodeInvalidGrant         = "invalid_grant"
	CodeUsernameTaken        = "username_taken"
	CodeUsernameInvalid      = "username_invalid"
	CodeRateLimited          = "rate_limited"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeRequestTooLarge      = "request_too_large"
	CodeUnsupportedMedia     = "unsupported_media_type"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal_error"
	// CodeUnauthorized: admin API only, no valid admin key.
	CodeUnauthorized = "unauthorized"
)

// problemType returns the RFC 9457 "type" URI of a code.
func problemType(code string) string { return "urn:hallpass:problem:" + code }

// problemText is the fixed title and detail of each code: nothing from the
// request ever goes into a response.
var problemText = map[string][2]string{
	CodeInvalidRequest:       {"Invalid request", "The request is malformed or misses a required field."},
	CodeInvalidToken:         {"Invalid access token", "The access token is missing, malformed, not signed by this issuer or not meant for this audience."},
	CodeTokenExpired:         {"Access token expired", "The access token has expired; refresh it."},
	CodeTokenRevoked:         {"Access token revoked", "The device of this access token has logged out or was revoked."},
	CodeInvalidDPoPProof:     {"Invalid DPoP proof", "The DPoP proof is missing, malformed, replayed, or not valid for this request or key."},
	CodeUseDPoPNonce:         {"DPoP nonce required", "Retry with a DPoP proof carrying the nonce from the DPoP-Nonce header."},
	CodeInvalidGrant:         {"Invalid grant", "The refresh token is invalid, expired, already used or not bound to this device key."},
	CodeUsernameTaken:        {"Username taken", "This username is already registered."},
	CodeUsernameInvalid:      {"Username invalid", "The username does not meet the username policy."},
	CodeRateLimited:          {"Too many requests", "Too many requests; retry after the time in the Retry-After header."},
	CodeUnsupportedGrantType: {"Unsupported grant type", "Only grant_type=refresh_token is supported."},
	CodeRequestTooLarge:      {"Request too large", "The request body exceeds the size limit."},
	CodeUnsupportedMedia:     {"Unsupported media type", "The request body has a content type this endpoint does not accept."},
	CodeNotFound:             {"Not found", "No such endpoint or resource."},
	CodeMethodNotAllowed:     {"Method not allowed", "The endpoint does not support this method."},
	CodeUnavailable:          {"Service unavailable", "A backing service did not answer in time; nothing was changed. Retry later."},
	CodeInternal:             {"Internal error", "The server failed to handle the request."},
	CodeUnauthorized:         {"Unauthorized", "A valid admin key is required."},
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id,omitempty"`
}

// apiError is what handlers return for a failure: a status, a stable code
// and the cause (logged, never sent). challenge marks a 401 that carries a
// WWW-Authenticate header; nonce a response that carries a fresh DPoP-Nonce.
type apiError struct {
	status     int
	code       string
	cause      error
	retryAfter int // seconds; 0 = no header
	nonce      bool
	noAuthSent bool   // 401 without credentials: challenge without error=
	challenge  string // WWW-Authenticate of a 401 other than DPoP (admin API)
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

// wwwAuthenticate is the RFC 9449 section 7.1 challenge.
func wwwAuthenticate(code string, withError bool) string {
	if !withError {
		return `DPoP algs="ES256 EdDSA"`
	}
	return `DPoP error="` + code + `", algs="ES256 EdDSA"`
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
	txt, ok := problemText[ae.code]
	if !ok {
		txt = problemText[CodeInternal]
	}
	p := problem{Type: problemType(ae.code), Title: txt[0], Status: ae.status, Code: ae.code, Detail: txt[1]}
	if ae.status >= 500 {
		p.RequestID = rid
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if ae.status == http.StatusUnauthorized {
		if ae.challenge != "" {
			h.Set("WWW-Authenticate", ae.challenge)
		} else {
			h.Set("WWW-Authenticate", wwwAuthenticate(ae.code, !ae.noAuthSent))
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
