package dpop

import (
	"errors"

	"github.com/hallpass/hallpass/problem"
)

// Proof failures returned by [Verify]. Each failure wraps one of them (test
// with errors.Is), sometimes with a fixed detail; the text never contains
// anything taken from the proof. [ErrorCode] maps them to RFC 9449 codes.
var (
	ErrTooLarge        = errors.New("dpop: proof too large")                                  // over Options.MaxProofSize
	ErrMalformed       = errors.New("dpop: malformed proof")                                  // not compact JWS, bad base64url, JSON or UTF-8
	ErrDuplicateKey    = errors.New("dpop: duplicate JSON member")                            // in header, jwk or claims, at any depth
	ErrType            = errors.New("dpop: typ is not dpop+jwt")                              // missing or other typ
	ErrAlgorithm       = errors.New("dpop: alg not allowed")                                  // not ES256, EdDSA or Ed25519
	ErrCritical        = errors.New("dpop: crit header not supported")                        // any crit header
	ErrKey             = errors.New("dpop: jwk is not an allowed public key for alg")         // private, symmetric, wrong type or curve, invalid point
	ErrSignature       = errors.New("dpop: invalid signature")                                // every signature failure
	ErrClaims          = errors.New("dpop: missing or malformed claim")                       // jti, htm, htu, iat missing or mistyped
	ErrMethod          = errors.New("dpop: htm does not match the request method")            // htm != Request.Method
	ErrURL             = errors.New("dpop: htu does not match the request URL")               // after normalisation
	ErrTooOld          = errors.New("dpop: proof too old")                                    // iat before now - MaxAge
	ErrFuture          = errors.New("dpop: proof issued in the future")                       // iat after now + MaxFuture
	ErrAccessTokenHash = errors.New("dpop: ath missing or does not match the access token")   // with Request.AccessToken
	ErrKeyMismatch     = errors.New("dpop: proof key does not match the token's key binding") // thumbprint != Request.JKT
	ErrReplay          = errors.New("dpop: proof replayed")                                   // jti already seen for this key

	// The server demands a nonce (RFC 9449 sections 8 and 9) and the proof
	// has none, or one it did not issue or that has expired. Answer with
	// use_dpop_nonce and a fresh DPoP-Nonce header.
	ErrNonceRequired = errors.New("dpop: server nonce required")
	ErrNonceInvalid  = errors.New("dpop: server nonce invalid or expired")
)

// Errors that are not the client's fault. [ErrorCode] returns "" for them:
// answer 500 or 503, not 400/401.
var (
	// The replay cache could not give an answer (Redis down, memory cache
	// full, context cancelled). Verify fails closed: the proof is rejected.
	ErrReplayCheck = errors.New("dpop: replay check failed")
	// The memory replay cache holds MaxEntries live entries. It refuses
	// new ones rather than forget old ones; wrapped in ErrReplayCheck.
	ErrReplayCacheFull = errors.New("dpop: replay cache full")
	// Options or Request are unusable (server configuration error).
	ErrConfig = errors.New("dpop: invalid configuration")
)

// RFC 9449 error codes, for the "error" member of a token endpoint response
// (section 5) or the WWW-Authenticate DPoP challenge (section 7.1).
// They are the codes of the same name in package problem.
const (
	CodeInvalidProof = problem.InvalidDPoPProof
	CodeUseNonce     = problem.UseDPoPNonce
)

// ErrorCode returns the RFC 9449 error code for err: [CodeUseNonce] for
// [ErrNonceRequired] and [ErrNonceInvalid] (send a fresh nonce in the
// DPoP-Nonce header with it), [CodeInvalidProof] for every other proof
// failure, and "" for errors that are not a verdict on the proof
// ([ErrReplayCheck], [ErrConfig], or anything from another package), which
// should be answered as a server error.
func ErrorCode(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrReplayCheck), errors.Is(err, ErrConfig):
		return ""
	case errors.Is(err, ErrNonceRequired), errors.Is(err, ErrNonceInvalid):
		return CodeUseNonce
	}
	for _, e := range proofErrors {
		if errors.Is(err, e) {
			return CodeInvalidProof
		}
	}
	return ""
}

var proofErrors = []error{
	ErrTooLarge, ErrMalformed, ErrDuplicateKey, ErrType, ErrAlgorithm,
	ErrCritical, ErrKey, ErrSignature, ErrClaims, ErrMethod, ErrURL,
	ErrTooOld, ErrFuture, ErrAccessTokenHash, ErrKeyMismatch, ErrReplay,
}

// details say what to fix for each proof failure: fixed text, never
// anything from the proof.
var details = []struct {
	err    error
	detail string
}{
	{ErrTooLarge, "The DPoP proof is larger than the server accepts."},
	{ErrMalformed, "The DPoP header is missing, repeated, or not a compact JWS with base64url JSON parts."},
	{ErrDuplicateKey, "The DPoP proof repeats a JSON member."},
	{ErrType, `The DPoP proof's typ must be "dpop+jwt".`},
	{ErrAlgorithm, "The DPoP proof's alg must be ES256 or EdDSA."},
	{ErrCritical, "The DPoP proof has a crit header, which is not supported."},
	{ErrKey, "The DPoP proof's jwk must be a public P-256 (ES256) or Ed25519 (EdDSA) key matching alg."},
	{ErrSignature, "The DPoP proof's signature does not verify with its jwk."},
	{ErrClaims, "The DPoP proof must carry jti, htm, htu and iat with the right types."},
	{ErrMethod, "The DPoP proof's htm does not match the request method."},
	{ErrURL, "The DPoP proof's htu does not match the request URL (scheme, host, port and path as the server is configured; no query or fragment)."},
	{ErrTooOld, "The DPoP proof's iat is too old; make a fresh proof for each request (check the device clock)."},
	{ErrFuture, "The DPoP proof's iat is in the future; check the device clock."},
	{ErrAccessTokenHash, "The DPoP proof's ath must be the base64url SHA-256 of the access token sent with it."},
	{ErrKeyMismatch, "The DPoP proof is signed by another key than the one the token is bound to."},
	{ErrReplay, "This DPoP proof was already used; make a fresh proof (new jti) for each request."},
	{ErrNonceRequired, "Retry with a DPoP proof carrying the nonce from the DPoP-Nonce header."},
	{ErrNonceInvalid, "The DPoP proof's nonce is unknown or expired; retry with the nonce from the DPoP-Nonce header."},
}

// Detail returns a fixed sentence that says what is wrong with a proof
// refused with err, for the detail of an error response, or "" when err is
// not a proof failure. It never contains anything from the proof.
func Detail(err error) string {
	for _, d := range details {
		if errors.Is(err, d.err) {
			return d.detail
		}
	}
	return ""
}
