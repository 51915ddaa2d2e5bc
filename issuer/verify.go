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

// stateFromMirror reports whether device and account revocations reach the
// issuer's own verifier through its mirror, so that identity routes need
// only the account read (flow.AccountCheck): the issuer writes an entry
// for every device it signs out and every account it bans or deletes
// (Config.Revocations), the mirror applies this node's own entries at once
// (Observe) and refuses tokens while stale. A mirror that fails open, or
// one that is not told of this node's writes, keeps the full store check.
func stateFromMirror(cfg Config) bool {
	if cfg.Revocations == nil || cfg.RevocationMirror == nil {
		return false
	}
	if _, ok := cfg.RevocationMirror.(entryObserver); !ok {
		return false
	}
	fo, ok := cfg.RevocationMirror.(interface{ FailsOpen() bool })
	return ok && !fo.FailsOpen()
}

// newVerifier is an issuer verifier: its ring's keys, and as revocation
// check the mirror (in memory, cheap) and then state, an account-state
// check (store reads).
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
