package flow

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/revocation"
)

// RevocationWriteObserver is an optional interface of Config.Observer:
// told of each revocation entry that could not be written (after its
// retries, for the entry of a refresh-token reuse), so that a failure
// nobody sees in an answer is counted and can be alerted on.
type RevocationWriteObserver interface {
	RevocationWriteFailed()
}

// SignOutStepObserver is an optional interface of Config.Observer: told
// of each store step after a revocation entry (a sign-out's session end, a
// deletion, the sessions of a ban or of an admin entry) that still failed
// after its retries, op naming it (end_session, end_account_sessions,
// delete_account). Its 503 is an answer the client cannot act on: the
// entry already refuses the client's own token.
type SignOutStepObserver interface {
	SignOutStepFailed(op string)
}

// AddEntry writes a revocation entry made now, when a revocation store is
// configured, hands the stored entry to Config.Observe (the node's own
// mirror refuses it at once, not one stream round trip later) and returns
// it. Without a store it does nothing: the account-state check still
// refuses a revoked device on the issuer, but offline verifiers do not
// learn.
func (f *Flows) AddEntry(ctx context.Context, kind revocation.Kind, id, reason string) (revocation.Entry, error) {
	e, err := f.addEntry(ctx, kind, id, reason)
	if errors.Is(err, ErrUnavailable) {
		f.revocationWriteFailed()
	}
	return e, err
}

// Retries of a write no client will retry: the device entry after a
// refresh-token reuse (the caller's answer is invalid_grant whatever
// happens, and a thief's copy of the access token stays valid at every
// verifier that does not learn of the entry), the entry written again after
// a sign-out's store step, and that store step itself (the entry written
// before it already refuses the client's own token). Each gets a few
// attempts, with backoff, all within detachedBudget.
const (
	detachedAttempts = 3
	detachedBackoff  = 100 * time.Millisecond // doubled after each failure
)

// detachedBudget bounds one retried write: twice the store timeout, so an
// answer waits at most that long for it.
func (f *Flows) detachedBudget() time.Duration { return 2 * f.cfg.StoreTimeout }

// retried runs write, a flow step no client will retry, and runs it again
// while it fails with ErrUnavailable (the store did not answer):
// detachedAttempts in all, with backoff between them, until the budget
// runs out. Any other error is an answer and is not retried. The write
// does not end with ctx: a client that hangs up must not stop it. It
// returns the number of attempts and the last error.
func (f *Flows) retried(ctx context.Context, write func(ctx context.Context) error) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.detachedBudget())
	defer cancel()
	backoff := detachedBackoff
	for attempt := 1; ; attempt++ {
		err := write(ctx)
		if !errors.Is(err, ErrUnavailable) || attempt == detachedAttempts {
			return attempt, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, err
		case <-t.C:
		}
		backoff *= 2
	}
}

// addEntryRetried is AddEntry for a write no caller will retry (retried).
// A refused entry is not retried. It returns the stored entry, the number
// of attempts and the last error; a final failure is counted once
// (unwritten).
func (f *Flows) addEntryRetried(ctx context.Context, kind revocation.Kind, id, reason string) (revocation.Entry, int, error) {
	var e revocation.Entry
	n, err := f.retried(ctx, func(ctx context.Context) error {
		var err error
		e, err = f.addEntry(ctx, kind, id, reason)
		return err
	})
	if errors.Is(err, ErrUnavailable) {
		f.unwritten(kind, id, reason)
	}
	return e, n, err
}

// detailStepFailed is the 503's detail when a sign-out's store step still
// failed after its entry: the usual "nothing was changed, retry" is false.
const detailStepFailed = "The revocation is in force: the tokens it covers are already refused and cannot repeat this request. " +
	"Completing it in the account store failed."

// endStep runs the store step that follows a revocation entry: a
// sign-out's session end, a deletion, the sessions of a ban or of an admin
// entry. The entry already refuses the client's own token, so the client
// cannot retry a step that failed (a 503 "retry" it could not act on left
// a logout's session live in the store and a deleted account's data in
// place): the step is retried here (retried). The store's answers pass as
// flow errors (account.ErrNotFound: ErrNotFound) and are not retried; a
// store that still did not answer is ErrUnavailable, logged and counted
// (SignOutStepObserver), and the entry is written once more for the
// sessions' idle limit (holdEntry), so that the session the step left live
// never refreshes again.
//
// An attempt that did not answer may still have made the step (a reply
// lost, or an abandoned call that completed: storecall), and a deletion
// is not idempotent: its retry finds no account. Once an attempt went
// unanswered, a not-found answer is what the step asked for (no account,
// or no session left to end) and counts as done; otherwise a deletion
// that happened answered not found and skipped the entry written again
// after it (resealEntry).
func (f *Flows) endStep(ctx context.Context, op string, kind revocation.Kind, id, reason string, step func(ctx context.Context) error) error {
	unanswered := false
	n, err := f.retried(ctx, func(ctx context.Context) error {
		switch err := f.call(ctx, op, step); {
		case err == nil:
			return nil
		case errors.Is(err, account.ErrNotFound):
			if unanswered {
				return nil
			}
			return fail(ErrNotFound, err)
		default:
			unanswered = true
			return storeErr(op, err)
		}
	})
	if !errors.Is(err, ErrUnavailable) {
		return err
	}
	f.log.LogAttrs(ctx, slog.LevelError, "the store step after a revocation entry failed after its retries; the entry refuses the tokens, the store change is not made",
		slog.String("event", "signout_step_failed"), slog.String("op", op), slog.String("id", id),
		slog.Int("attempts", n), slog.String("error", err.Error()))
	if o, ok := f.obs.(SignOutStepObserver); ok {
		o.SignOutStepFailed(op)
	}
	f.holdEntry(ctx, kind, id, reason)
	return &Error{Code: ErrUnavailable.Code, Detail: detailStepFailed, Err: err}
}

// holdEntry writes the entry of kind:id once more after the store step
// that should have ended the sessions it names failed for good, living
// as long as one of those sessions could still refresh: Config.RefreshIdle
// (the sessions were last used before now; a session unused for that long
// has ended). Until then every refresh of them meets the entry in the
// issuer's mirror and ends the session (step 6 of the refresh), so no
// refresh token of a signed-out device or account works again when the
// first entry (Config.EntryTTL) expires. The write is retried, and a final
// failure is logged and counted: the first entry still stands.
func (f *Flows) holdEntry(ctx context.Context, kind revocation.Kind, id, reason string) {
	if f.cfg.Revocations == nil {
		return
	}
	ttl := max(f.cfg.EntryTTL, f.cfg.RefreshIdle)
	n, err := f.retried(ctx, func(ctx context.Context) error {
		_, err := f.addEntryTTL(ctx, kind, id, reason, ttl)
		return err
	})
	if err != nil {
		f.revocationWriteFailed()
		f.log.LogAttrs(ctx, slog.LevelError, "holding the revocation for the sessions' idle limit failed; a session the failed step left live refreshes again once the first entry expires",
			slog.String("event", "revocation_write_failed"), slog.String("kind", string(kind)), slog.String("id", id),
			slog.Int("attempts", n), slog.String("error", err.Error()))
	}
}

// resealEntry writes the entry of kind:id again after the store step that
// ended the sessions it names (for a device entry, only when the step
// outlasted the first entry's Before: sealIfLate). A refresh racing the
// sign-out (its mirror check just before the first entry arrived, its
// store step just before the sessions ended) advanced its session and
// minted an access token after the first entry's before, which that entry
// does not deny. No refresh gets past the store after the step, so an
// entry written after it denies every access token the device or account
// holds. As for a reuse, no client would retry this write: it is retried
// here, and a final failure is logged and counted, and still applied to
// this node's mirror (unwritten); the first entry and the store step stand
// either way. It returns the entry in force.
func (f *Flows) resealEntry(ctx context.Context, first revocation.Entry, kind revocation.Kind, id, reason string) revocation.Entry {
	if f.cfg.Revocations == nil {
		return first
	}
	e, n, err := f.addEntryRetried(ctx, kind, id, reason)
	if err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "writing the revocation again after the sign-out failed; a token a racing refresh minted stays valid at verifiers until it expires",
			slog.String("event", "revocation_write_failed"), slog.String("kind", string(kind)), slog.String("id", id),
			slog.Int("attempts", n), slog.String("error", err.Error()))
		return first
	}
	return e
}

// unwritten handles an entry that could not be written and that nobody
// will retry (a reuse detection, a recovery's sign-outs): the failure is
// counted, and the entry still goes to Config.Observe, so that this node
// refuses the tokens it meant to revoke (its identity routes take device
// state from its mirror). Other nodes learn nothing: their mirrors, like
// every offline verifier's, accept the tokens until they expire; their
// routes that change an account still read the device's state from the
// store, where the session is ended.
func (f *Flows) unwritten(kind revocation.Kind, id, reason string) {
	f.revocationWriteFailed()
	if f.cfg.Observe == nil || f.cfg.Revocations == nil {
		return
	}
	if e, err := f.newEntry(kind, id, reason, f.cfg.EntryTTL); err == nil {
		f.cfg.Observe(e)
	}
}

func (f *Flows) revocationWriteFailed() {
	if o, ok := f.obs.(RevocationWriteObserver); ok {
		o.RevocationWriteFailed()
	}
}

// newEntry builds an entry made now that lives ttl. A device entry's
// Before is SignOutMargin ahead of now (its Expires too, so that it lives
// ttl past Before): a device signed out never gets a token again, and the
// margin denies the access token of a refresh racing the sign-out, minted
// after the entry was made but before the sign-out's store step ended the
// session (sealIfLate), without writing the entry a second time.
func (f *Flows) newEntry(kind revocation.Kind, id, reason string, ttl time.Duration) (revocation.Entry, error) {
	now := f.now().UTC()
	if kind != revocation.KindDevice {
		return revocation.NewEntry(kind, id, reason, now, ttl)
	}
	e, err := revocation.NewEntry(kind, id, reason, now, ttl+f.SignOutMargin())
	if err != nil {
		return e, err
	}
	e.Before = e.Before.Add(f.SignOutMargin())
	return e, e.Validate()
}

// SignOutMargin is how far past its making a device entry denies the
// device's tokens: the retry budget of the store step that ends the
// session after it (twice the store timeout). A step that ends within it
// needs no second entry (sealIfLate).
func (f *Flows) SignOutMargin() time.Duration { return f.detachedBudget() }

// sealIfLate follows a device sign-out's store step. The step ended the
// session; a refresh racing it minted its access token before its own
// store step, so before this step ended. While now is before the entry's
// Before, every such token was issued before it and is denied: first
// stays in force, and nothing more is written (one event for every
// mirror). A step that ended later (a slow or retried store) gets the
// entry written again (resealEntry).
func (f *Flows) sealIfLate(ctx context.Context, first revocation.Entry, id, reason string) revocation.Entry {
	if f.cfg.Revocations == nil || f.now().Before(first.Before) {
		return first
	}
	return f.resealEntry(ctx, first, revocation.KindDevice, id, reason)
}

// addEntry is AddEntry without the failure count.
func (f *Flows) addEntry(ctx context.Context, kind revocation.Kind, id, reason string) (revocation.Entry, error) {
	return f.addEntryTTL(ctx, kind, id, reason, f.cfg.EntryTTL)
}

// addEntryTTL is addEntry for an entry that lives ttl.
func (f *Flows) addEntryTTL(ctx context.Context, kind revocation.Kind, id, reason string, ttl time.Duration) (revocation.Entry, error) {
	if f.cfg.Revocations == nil {
		return revocation.Entry{}, nil
	}
	e, err := f.newEntry(kind, id, reason, ttl)
	if err != nil {
		return revocation.Entry{}, fail(ErrInvalidRequest, err)
	}
	var stored revocation.Entry
	if err := f.call(ctx, "revocation_add", func(ctx context.Context) error {
		var err error
		stored, err = f.cfg.Revocations.Add(ctx, e)
		return err
	}); err != nil {
		if errors.Is(err, revocation.ErrInvalidEntry) {
			return revocation.Entry{}, fail(ErrInvalidRequest, err)
		}
		return revocation.Entry{}, storeErr("revocation_add", err)
	}
	if f.cfg.Observe != nil {
		f.cfg.Observe(stored)
	}
	return stored, nil
}

// Revoke writes an entry of any kind (the admin API) and, for a device or
// account entry, ends the matching sessions right after (endStep, retried:
// the entry may refuse the caller's token), so the device or account stays
// out when the entry expires, and then, for a refresh that raced the
// step, writes an account entry again (resealEntry) and a device entry
// again only when the step outlasted its Before (sealIfLate); it returns
// the entry in force. An id with no session is not an error: entries may
// name devices this store does not know.
func (f *Flows) Revoke(ctx context.Context, kind revocation.Kind, id, reason string) (revocation.Entry, error) {
	e, err := f.AddEntry(ctx, kind, id, reason)
	if err != nil {
		return e, err
	}
	now := f.now().UTC()
	var op string
	var end func(ctx context.Context) error
	switch kind {
	case revocation.KindDevice:
		op, end = "end_session", func(ctx context.Context) error { return f.cfg.Store.EndSession(ctx, id, now) }
	case revocation.KindAccount:
		op, end = "end_account_sessions", func(ctx context.Context) error { _, err := f.cfg.Store.EndAccountSessions(ctx, id, now); return err }
	default:
		return e, nil
	}
	switch err := f.endStep(ctx, op, kind, id, reason, end); {
	case errors.Is(err, ErrNotFound):
		return e, nil // no session: nothing could race
	case err != nil:
		return e, err
	}
	if kind == revocation.KindDevice {
		return f.sealIfLate(ctx, e, id, reason), nil
	}
	return f.resealEntry(ctx, e, kind, id, reason), nil
}

// RevokeDevice signs a device out (logout, self-service, admin): a device
// entry, so that every mirror refuses the device's access tokens, then the
// session ended and the device marked revoked, so refresh stops working.
// The entry is written first, so the device is denied at once; the entry
// then refuses the token a logout came with, so the session step is
// retried here (endStep), and if it still fails the answer is
// ErrUnavailable with the device denied and its session ended by the next
// refresh that meets the entry. A refresh that raced the step is denied
// by the entry's Before, SignOutMargin past its making, or, when the step
// outlasted it, by the entry written again (sealIfLate). Revoking a
// revoked device succeeds again.
func (f *Flows) RevokeDevice(ctx context.Context, deviceID, reason string) error {
	first, err := f.AddEntry(ctx, revocation.KindDevice, deviceID, reason)
	if err != nil {
		return err
	}
	now := f.now().UTC()
	if err := f.endStep(ctx, "end_session", revocation.KindDevice, deviceID, reason, func(ctx context.Context) error {
		return f.cfg.Store.EndSession(ctx, deviceID, now)
	}); err != nil {
		if errors.Is(err, ErrNotFound) {
			return storeErr("end_session", err) // as before: a device gone under the call
		}
		return err
	}
	f.sealIfLate(ctx, first, deviceID, reason)
	return nil
}

// Device loads a device, ErrNotFound when there is none.
func (f *Flows) Device(ctx context.Context, id string) (account.Device, error) {
	return read(ctx, f, "get_device", func(ctx context.Context) (account.Device, error) {
		return f.cfg.Store.GetDevice(ctx, id)
	})
}

// Devices lists an account's devices (only its own: a record of another
// account is dropped, defence in depth).
func (f *Flows) Devices(ctx context.Context, accountID string) ([]account.Device, error) {
	var devs []account.Device
	if err := f.call(ctx, "list_devices", func(ctx context.Context) error {
		var err error
		devs, err = f.cfg.Store.ListDevices(ctx, accountID)
		return err
	}); err != nil {
		return nil, storeErr("list_devices", err)
	}
	out := devs[:0]
	for _, d := range devs {
		if d.AccountID == accountID {
			out = append(out, d)
		}
	}
	return out, nil
}
