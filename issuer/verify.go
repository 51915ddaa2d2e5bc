package issuer

import (
	"context"
	"errors"
	"net/http"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// ringKeys is the verifier's key source: the keys of the issuer's own ring,
// with the same answers an offline verifier gets from the published key set
// (a current, next or retired key verifies, a revoked one is refused, a
// pruned one is unknown), without building that document per request.
type ringKeys struct {
	keys KeySource
}

func (r ringKeys) LookupKey(_ context.Context, kid keys.KeyID) (keys.PublicKey, error) {
	pk, status, ok := r.keys.Lookup(kid)
	switch {
	case !ok:
		return keys.PublicKey{}, verifier.ErrUnknownKey
	case status == keys.StatusRevoked:
		return keys.PublicKey{}, verifier.ErrKeyRevoked
	}
	return pk, nil
}

func newVerifier(cfg Config) (*verifier.Verifier, error) {
	opts := []verifier.Option{verifier.WithClock(cfg.Now), verifier.WithLeeway(cfg.Leeway)}
	if cfg.RevocationMirror != nil {
		opts = append(opts, verifier.WithRevocation(cfg.RevocationMirror))
	}
	return verifier.New(ringKeys{keys: cfg.Keys}, cfg.PublicURL, cfg.Audience, opts...)
}

// bindingFunc adapts a function to verifier.BindingChecker.
type bindingFunc func(ctx context.Context, c *token.Claims) error

func (f bindingFunc) CheckBinding(ctx context.Context, c *token.Claims) error { return f(ctx, c) }

// tokenError maps a verifier error to a response. A binding failure carries
// the proof's own *apiError (invalid_dpop_proof, use_dpop_nonce, or 503
// when the replay cache did not answer).
func tokenError(err error) *apiError {
	var ae *apiError
	if errors.Is(err, verifier.ErrBinding) && errors.As(err, &ae) {
		return ae
	}
	switch verifier.Code(err) {
	case verifier.CodeTokenExpired:
		return fail(http.StatusUnauthorized, CodeTokenExpired, err)
	case verifier.CodeTokenRevoked:
		if errors.Is(err, revocation.ErrStale) {
			// The mirror cannot vouch for the token: fail closed, but
			// as "retry later", not as a verdict on the token.
			return errUnavailable(err)
		}
		return fail(http.StatusUnauthorized, CodeTokenRevoked, err)
	case verifier.CodeInvalidDPoPProof:
		return fail(http.StatusUnauthorized, CodeInvalidDPoPProof, err)
	case verifier.CodeInvalidToken:
		return fail(http.StatusUnauthorized, CodeInvalidToken, err)
	}
	return errInternal(err)
}
