package dpop

import "errors"

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
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
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
