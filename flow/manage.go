package flow

import (
	"context"
	"errors"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/revocation"
)

// Account loads an account, ErrNotFound when there is none.
func (f *Flows) Account(ctx context.Context, id string) (account.Account, error) {
	return read(ctx, f, "get_account", func(ctx context.Context) (account.Account, error) {
		return f.cfg.Store.GetAccount(ctx, id)
	})
}

// read runs one store read: ErrNotFound for a missing record, ErrUnavailable
// when the store does not answer.
func read[T any](ctx context.Context, f *Flows, op string, fn func(ctx context.Context) (T, error)) (T, error) {
	var v T
	err := f.call(ctx, op, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	})
	var zero T // v may still be written by an abandoned call: never read it on error
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, account.ErrNotFound):
		return zero, fail(ErrNotFound, err)
	}
	return zero, storeErr(op, err)
}

// EndAccount refuses every token of the account everywhere and ends all
// its sessions, so it stays revoked after the entry expires: an account
// entry first (every mirror refuses the account's access tokens at once),
// then every session ended in one store step, retried here (endStep). It
// is what a ban does (an admin account revocation and a deletion do the
// same through Revoke and DeleteAccount). A failure after the entry leaves
// the account denied. After the sessions' end the entry is written again
// (resealEntry), for a refresh that raced it.
func (f *Flows) EndAccount(ctx context.Context, accountID, reason string) error {
	first, err := f.AddEntry(ctx, revocation.KindAccount, accountID, reason)
	if err != nil {
		return err
	}
	now := f.now().UTC()
	if err := f.endStep(ctx, "end_account_sessions", revocation.KindAccount, accountID, reason, func(ctx context.Context) error {
		_, err := f.cfg.Store.EndAccountSessions(ctx, accountID, now)
		return err
	}); err != nil {
		return err
	}
	f.resealEntry(ctx, first, revocation.KindAccount, accountID, reason)
	return nil
}

// DeleteAccount deletes an account: every token refused everywhere (an
// account entry), every session ended, the data removed but a tombstone
// that holds the username for Config.UsernameHold; then the entry written
// again (resealEntry), for a refresh that raced the removal. The entry
// refuses the owner's token, so the owner cannot repeat a deletion whose
// store step failed: the step is retried here (endStep); if it still
// fails, the answer is ErrUnavailable and an operator's deletion or a
// recovery finishes it.
func (f *Flows) DeleteAccount(ctx context.Context, accountID, reason string) error {
	first, err := f.AddEntry(ctx, revocation.KindAccount, accountID, reason)
	if err != nil {
		return err
	}
	now := f.now().UTC()
	if err := f.endStep(ctx, "delete_account", revocation.KindAccount, accountID, reason, func(ctx context.Context) error {
		return f.cfg.Store.DeleteAccount(ctx, accountID, now, now.Add(f.cfg.UsernameHold))
	}); err != nil {
		return err
	}
	f.resealEntry(ctx, first, revocation.KindAccount, accountID, reason)
	return nil
}

// Rename changes an account's username under the username policy, claiming
// the new name atomically; the old name is held for Config.UsernameHold as
// after a deletion. It returns the display form of the new name.
func (f *Flows) Rename(ctx context.Context, accountID, tainted string) (string, error) {
	name, err := f.cfg.Usernames.Check(tainted)
	if err != nil {
		return "", fail(ErrUsernameInvalid, err)
	}
	acc, err := f.Account(ctx, accountID)
	if err != nil {
		return "", err
	}
	if acc.UsernameKey == name.Key {
		// The same name (another case or look-alike form): nothing to
		// claim; the stored display stays.
		return acc.Username, nil
	}
	if err := f.renameBudget(ctx, accountID); err != nil {
		return "", err
	}
	now := f.now().UTC()
	if err := f.call(ctx, "rename_account", func(ctx context.Context) error {
		return f.cfg.Store.RenameAccount(ctx, accountID, name.Display, name.Key, now, now.Add(f.cfg.UsernameHold))
	}); err != nil {
		switch {
		case errors.Is(err, account.ErrUsernameTaken):
			return "", fail(ErrUsernameTaken, nil)
		case errors.Is(err, account.ErrNotFound):
			return "", fail(ErrNotFound, err)
		}
		return "", storeErr("rename_account", err)
	}
	return name.Display, nil
}

// renameBudget spends one rename of the account's budget
// (Config.RenamePerAccount): a rename that changes the name, taken or not.
func (f *Flows) renameBudget(ctx context.Context, accountID string) error {
	return f.spend(ctx, "rename:account:"+accountID, f.cfg.RenamePerAccount, "rename budget of this account spent")
}

// spend takes one from the budget key of rule (Config.Limiter): nil with
// no Limiter or an unlimited rule, ErrRateLimited (spent, saying why) with
// when to try again, or unavailable when the limiter does not answer.
func (f *Flows) spend(ctx context.Context, key string, rule ratelimit.Rule, spent string) error {
	if f.cfg.Limiter == nil || rule.Unlimited() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.StoreTimeout)
	defer cancel()
	d, err := f.cfg.Limiter.Allow(ctx, key, rule, f.now())
	if err != nil {
		return storeErr("rate_limit", err)
	}
	if !d.Allowed {
		return &Error{Code: ErrRateLimited.Code, Err: errors.New(spent), RetryAfter: max(d.RetryAfter, time.Second)}
	}
	return nil
}
