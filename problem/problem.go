package problem

import "slices"

// Stable error codes (the "code" member of a problem details object, and
// the error= of a DPoP WWW-Authenticate challenge). Clients switch on these;
// titles and details may be reworded.
const (
	InvalidRequest       = "invalid_request"
	InvalidToken         = "invalid_token"
	TokenExpired         = "token_expired"
	TokenRevoked         = "token_revoked"
	InvalidDPoPProof     = "invalid_dpop_proof"
	UseDPoPNonce         = "use_dpop_nonce"
	InvalidGrant         = "invalid_grant"
	UsernameTaken        = "username_taken"
	UsernameInvalid      = "username_invalid"
	RateLimited          = "rate_limited"
	UnsupportedGrantType = "unsupported_grant_type"
	RequestTooLarge      = "request_too_large"
	UnsupportedMedia     = "unsupported_media_type"
	NotFound             = "not_found"
	MethodNotAllowed     = "method_not_allowed"
	Unavailable          = "unavailable"
	Internal             = "internal_error"
	// InvalidLinkCode: a link code that is wrong, expired or used (one
	// answer for all three).
	InvalidLinkCode = "invalid_link_code"
	// InvalidRecoveryCode: a recovery code that is wrong or used, or an
	// unknown username (one answer for all).
	InvalidRecoveryCode = "invalid_recovery_code"
	// DeviceLimit: the account has as many devices as allowed, live link
	// codes counted; a link code is made once one is signed out.
	DeviceLimit = "device_limit"
	// Unauthorized: the admin API only, no valid admin key.
	Unauthorized = "unauthorized"
	// Forbidden: the gateway's forward-auth endpoint, a caller that is not
	// a configured proxy.
	Forbidden = "forbidden"
	// BadGateway: the gateway's upstream did not answer.
	BadGateway = "bad_gateway"
)

// Scope says which API answers a code.
type Scope int

const (
	// Public: the issuer's public API (docs/openapi.yaml) and every
	// service that authenticates with verifier/httpauth.
	Public Scope = iota
	// Admin: the issuer's admin API only (docs/openapi-admin.yaml, which
	// also answers every Public code).
	Admin
	// Gateway: hallpass gateway's own refusals (docs/gateway.md).
	Gateway
)

// Info is what a code means on the wire.
type Info struct {
	// Status is the HTTP status of the code. invalid_dpop_proof and
	// use_dpop_nonce are 401 on resource requests and 400 on the token and
	// signup endpoints (RFC 9449 sections 5 and 7.1); Status is the 401.
	Status int
	// Title is a short fixed summary.
	Title string
	// Detail is the fixed default explanation.
	Detail string
	// Scope is the API that answers the code.
	Scope Scope
}

// Statuses are numbers, not net/http constants: this package (and so
// dpop and the verifier core) stays off net/http.
var infos = map[string]Info{
	InvalidRequest:       {400, "Invalid request", "The request is malformed or misses a required field.", Public},
	InvalidToken:         {401, "Invalid access token", "The access token is missing, malformed, not signed by this issuer or not meant for this audience.", Public},
	TokenExpired:         {401, "Access token expired", "The access token has expired; refresh it.", Public},
	TokenRevoked:         {401, "Access token revoked", "The device of this access token has logged out or was revoked.", Public},
	InvalidDPoPProof:     {401, "Invalid DPoP proof", "The DPoP proof is missing, malformed, replayed, or not valid for this request or key.", Public},
	UseDPoPNonce:         {401, "DPoP nonce required", "Retry with a DPoP proof carrying the nonce from the DPoP-Nonce header.", Public},
	InvalidGrant:         {400, "Invalid grant", "The refresh token is invalid, expired, already used or not bound to this device key.", Public},
	UsernameTaken:        {409, "Username taken", "This username is already registered.", Public},
	UsernameInvalid:      {400, "Username invalid", "The username does not meet the username policy.", Public},
	RateLimited:          {429, "Too many requests", "Too many requests; retry after the time in the Retry-After header.", Public},
	UnsupportedGrantType: {400, "Unsupported grant type", "Only grant_type=refresh_token is supported.", Public},
	RequestTooLarge:      {413, "Request too large", "The request body exceeds the size limit.", Public},
	UnsupportedMedia:     {415, "Unsupported media type", "The request body has a content type this endpoint does not accept.", Public},
	NotFound:             {404, "Not found", "No such endpoint or resource.", Public},
	MethodNotAllowed:     {405, "Method not allowed", "The endpoint does not support this method.", Public},
	Unavailable:          {503, "Service unavailable", "A backing service did not answer in time; nothing was changed. Retry later.", Public},
	Internal:             {500, "Internal error", "The server failed to handle the request.", Public},
	InvalidLinkCode:      {400, "Invalid link code", "The link code is wrong, expired or already used; make a new one on a signed-in device.", Public},
	InvalidRecoveryCode:  {400, "Invalid recovery code", "The username or recovery code is wrong, or the code was already used.", Public},
	DeviceLimit:          {409, "Device limit reached", "The account has as many devices as allowed (live link codes count as devices); sign one out first.", Public},
	Unauthorized:         {401, "Unauthorized", "A valid admin key is required.", Admin},
	Forbidden:            {403, "Forbidden", "This endpoint answers configured proxies only.", Gateway},
	BadGateway:           {502, "Bad gateway", "The upstream did not answer.", Gateway},
}

// Lookup returns the meaning of code, and false for a code that is not in
// the vocabulary.
func Lookup(code string) (Info, bool) {
	i, ok := infos[code]
	return i, ok
}

// Codes returns every code, sorted.
func Codes() []string {
	out := make([]string, 0, len(infos))
	for c := range infos {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Type returns the RFC 9457 "type" URI of a code.
func Type(code string) string { return "urn:hallpass:problem:" + code }

// Details is an RFC 9457 problem details object as hallpass writes it.
type Details struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	// Reason refines username_invalid for display (too_short, reserved,
	// confusable, ...): a fixed word, never request content.
	Reason    string `json:"reason,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// New returns the details of code answered with status. detail, when not
// empty, replaces the code's default detail: it must be fixed text or the
// server's own configuration, never request content or a secret. An
// unknown code is answered as internal_error. requestID is kept for a 5xx
// only (it is what an operator looks up in the log).
func New(code string, status int, detail, requestID string) Details {
	info, ok := infos[code]
	if !ok {
		code, info = Internal, infos[Internal]
	}
	if detail == "" {
		detail = info.Detail
	}
	d := Details{Type: Type(code), Title: info.Title, Status: status, Code: code, Detail: detail}
	if status >= 500 {
		d.RequestID = requestID
	}
	return d
}

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// DPoPChallenge is the WWW-Authenticate value of a 401 on a DPoP-protected
// resource (RFC 9449 section 7.1); without credentials (code "") it names no
// error.
func DPoPChallenge(code string) string {
	if code == "" {
		return `DPoP algs="ES256 EdDSA"`
	}
	return `DPoP error="` + code + `", algs="ES256 EdDSA"`
}
