package token

import "errors"

// Sentinel errors, tested with errors.Is. Details are appended as fixed text;
// no error ever quotes a token, a claim value or key material.
var (
	// ErrMalformed: not a v4.public token, or not made of the right
	// segments. Returned before any cryptography.
	ErrMalformed = errors.New("token: malformed token")
	// ErrInvalidSignature: the token is not authentic. Bad base64, a body too
	// short to hold a signature and a wrong signature are deliberately one
	// opaque error.
	ErrInvalidSignature = errors.New("token: invalid signature")
	// ErrFooter: the unverified footer is too large, not the expected small
	// JSON object, or its kid is not a k4.pid.
	ErrFooter = errors.New("token: invalid footer")
	// ErrClaims: the payload is not a JSON object without duplicate names,
	// or a claim is missing, mistyped or inconsistent.
	ErrClaims = errors.New("token: invalid claims")
	// ErrInvalidKey: the key or signer cannot be used (zero value, not
	// Ed25519, or a signer whose id does not match its public key).
	ErrInvalidKey = errors.New("token: unusable key")
	// ErrConfig: a Minter configuration is invalid.
	ErrConfig = errors.New("token: invalid configuration")
	// ErrSubject: a Subject passed to Mint is invalid.
	ErrSubject = errors.New("token: invalid subject")
)
