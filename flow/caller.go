package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

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
// store, and loads what the issuer's handlers answer with (the account),
// in one store read: one bbolt read transaction, one Redis round trip
// (account.Store.GetCaller), on the request's goroutine. A store that does
// not answer refuses the token with verifier.ErrRevocationUnavailable (an
// HTTP layer answers 503).
//
// Verifiers other than the issuer need no store: device and account
// entries reach them through the revocation mirror.
type StateCheck struct{ f *Flows }

// StateCheck returns the account-state check of f.
func (f *Flows) StateCheck() StateCheck { return StateCheck{f: f} }

var (
	errDeviceState  = errors.New("flow: device revoked or not matching the token")
	errAccountState = errors.New("flow: account banned")
)

// CheckRevoked implements verifier.RevocationChecker.
func (s StateCheck) CheckRevoked(ctx context.Context, _ keys.KeyID, c *token.Claims) error {
	a, d, err := s.f.getCaller(ctx, c.Subject, c.Device)
	if err != nil {
		return err
	}
	if !d.Active() || d.AccountID != c.Subject || d.JKT != c.Confirmation.JKT {
		return errDeviceState
	}
	if a.Banned {
		return errAccountState
	}
	if who, ok := ctx.Value(callerKey{}).(*Caller); ok {
		who.Device, who.Account = d, a
	}
	return nil
}

// AccountCheck is the lighter account-state check, for when device and
// account revocations already reach the verifier through a revocation
// mirror that applies this node's own entries at once (the issuer's
// Config.RevocationMirror over Config.Revocations): every way a device
// stops being active or an account is banned or deleted writes a device or
// account entry first. It reads only the token's account, one store read
// (what /v1/me answers with; a view, account.ViewReader, where the store
// offers one: those entries cover what a view may lag), refuses a deleted
// or banned account, and records the account with the device as the
// token names it.
type AccountCheck struct{ f *Flows }

// AccountCheck returns the lighter account-state check of f.
func (f *Flows) AccountCheck() AccountCheck { return AccountCheck{f: f} }

// CheckRevoked implements verifier.RevocationChecker.
func (s AccountCheck) CheckRevoked(ctx context.Context, _ keys.KeyID, c *token.Claims) error {
	read := s.f.cfg.Store.GetAccount
	if v, ok := s.f.cfg.Store.(account.ViewReader); ok {
		read = v.GetAccountView
	}
	var a account.Account
	err := s.f.stateRead(ctx, "get_account", func(ctx context.Context) error {
		var err error
		a, err = read(ctx, c.Subject)
		return err
	})
	if err != nil {
		return err
	}
	if a.Banned {
		return errAccountState
	}
	if who, ok := ctx.Value(callerKey{}).(*Caller); ok {
		who.Account = a
		who.Device = account.Device{ID: c.Device, AccountID: c.Subject, JKT: c.Confirmation.JKT}
	}
	return nil
}

// getCaller runs the one read of the state check (stateRead).
func (f *Flows) getCaller(ctx context.Context, accountID, deviceID string) (a account.Account, d account.Device, err error) {
	err = f.stateRead(ctx, "get_caller", func(ctx context.Context) error {
		var err error
		a, d, err = f.cfg.Store.GetCaller(ctx, accountID, deviceID)
		return err
	})
	if err != nil {
		return account.Account{}, account.Device{}, err
	}
	return a, d, nil
}

// stateRead runs a state check's one read under the store timeout, on the
// caller's goroutine: both engines bound a read by its context (Redis
// commands carry the deadline; a bbolt read transaction reads the last
// committed version and never waits for the writer, only, briefly, for a
// remap of a growing file), so nothing needs abandoning. A missing record
// is a revoked token, any other failure an unavailable check.
func (f *Flows) stateRead(ctx context.Context, op string, read func(context.Context) error) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, f.cfg.StoreTimeout)
	err := read(ctx)
	cancel()
	f.obs.StoreCall(op, time.Since(start))
	switch {
	case err == nil, errors.Is(err, account.ErrNotFound):
		return err
	}
	return fmt.Errorf("%w: %s: %w", verifier.ErrRevocationUnavailable, op, err)
}
