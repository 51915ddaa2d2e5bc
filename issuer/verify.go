package issuer

import (
	"context"
	"errors"

	"github.com/hallpass/hallpass/keys"
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

// revocationCheckers runs checkers in order; the first refusal wins.
type revocationCheckers []verifier.RevocationChecker

func (rc revocationCheckers) CheckRevoked(ctx context.Context, kid keys.KeyID, c *token.Claims) error {
	for _, r := range rc {
		if err := r.CheckRevoked(ctx, kid, c); err != nil {
			return err
		}
	}
	return nil
}

var errStateCheckMissing = errors.New("issuer: the account-state check did not run")

// newVerifier is the issuer's verifier: its ring's keys, and as revocation
// check the mirror (in memory, cheap) and then the account state (store
// reads).
func newVerifier(cfg Config, state verifier.RevocationChecker) (*verifier.Verifier, error) {
	checks := revocationCheckers{}
	if cfg.RevocationMirror != nil {
		checks = append(checks, cfg.RevocationMirror)
	}
	checks = append(checks, state)
	opts := []verifier.Option{verifier.WithClock(cfg.Now), verifier.WithLeeway(cfg.Leeway), verifier.WithRevocation(checks)}
	if !cfg.NoTokenCache {
		opts = append(opts, verifier.WithTokenCache(cfg.TokenCache))
	}
	return verifier.New(ringKeys{keys: cfg.Keys}, cfg.PublicURL, cfg.Audience, opts...)
}
