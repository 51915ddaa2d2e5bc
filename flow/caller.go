package flow

import (
	"context"
	"errors"
	"fmt"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// Caller is an authenticated request's account state, as the state check
// loaded it.
type Caller struct {
	Device  account.Device
	Account account.Account
}

type callerKey struct{}

// WithCaller returns a context under which a StateCheck records the state
// it loaded into the returned *Caller, so that a handler needs no second
// store read. The *Caller is filled only when the check passed.
func WithCaller(ctx context.Context) (context.Context, *Caller) {
	c := new(Caller)
	return context.WithValue(ctx, callerKey{}, c), c
}

// StateCheck is the issuer's account-state check of an authenticated
// request, as a verifier.RevocationChecker: the token's device must exist,
// be active, belong to the token's account and hold the token's key, and
// the account must not be banned. It makes logout, reuse detection and
// bans effective on the issuer's own endpoints even without a revocation
// store. A store that does not answer refuses the token with
// verifier.ErrRevocationUnavailable (an HTTP layer answers 503).
type StateCheck struct{ f *Flows }

// StateCheck returns the account-state check of f.
func (f *Flows) StateCheck() StateCheck { return StateCheck{f: f} }

var errDeviceState = errors.New("flow: device revoked or not matching the token")

// CheckRevoked implements verifier.RevocationChecker.
func (s StateCheck) CheckRevoked(ctx context.Context, _ keys.KeyID, c *token.Claims) error {
	d, err := load(ctx, s.f, "get_device", func(ctx context.Context) (account.Device, error) { return s.f.cfg.Store.GetDevice(ctx, c.Device) })
	if err != nil {
		return err
	}
	if !d.Active() || d.AccountID != c.Subject || d.JKT != c.Confirmation.JKT {
		return errDeviceState
	}
	a, err := load(ctx, s.f, "get_account", func(ctx context.Context) (account.Account, error) { return s.f.cfg.Store.GetAccount(ctx, c.Subject) })
	if err != nil {
		return err
	}
	if a.Banned {
		return errors.New("flow: account banned")
	}
	if who, ok := ctx.Value(callerKey{}).(*Caller); ok {
		who.Device, who.Account = d, a
	}
	return nil
}

// load runs one read; a missing record is a revoked token, any other
// failure an unavailable check.
func load[T any](ctx context.Context, f *Flows, op string, read func(ctx context.Context) (T, error)) (T, error) {
	var v T
	err := f.call(ctx, op, func(ctx context.Context) error {
		var err error
		v, err = read(ctx)
		return err
	})
	var zero T // v may still be written by an abandoned call: never read it on error
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, account.ErrNotFound):
		return zero, err
	}
	return zero, fmt.Errorf("%w: %s: %w", verifier.ErrRevocationUnavailable, op, err)
}
