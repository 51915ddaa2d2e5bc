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

// Retries of the device entry written after a refresh-token reuse. Nobody
// retries that write for us: the caller's answer is invalid_grant whatever
// happens, and a thief's copy of the access token stays valid at every
// verifier that does not learn of the entry. So it gets a few attempts,
// with backoff, all within reuseEntryBudget.
const (
	reuseEntryAttempts = 3
	reuseEntryBackoff  = 100 * time.Millisecond // doubled after each failure
)

// reuseEntryBudget bounds the whole retried write: twice the store
// timeout, so a refresh answer waits at most that long for it.
func (f *Flows) reuseEntryBudget() time.Duration { return 2 * f.cfg.StoreTimeout }

// addEntryRetried is AddEntry for a write no caller will retry: a store
// that does not answer is tried again (reuseEntryAttempts in all, backoff
// between them) until the budget runs out. A refused entry is not retried.
// It returns the stored entry, the number of attempts and the last error;
// a final failure is counted once. The write does not end with ctx: a
// client that hangs up right after presenting a reused token must not stop
// the revocation.
func (f *Flows) addEntryRetried(ctx context.Context, kind revocation.Kind, id, reason string) (revocation.Entry, int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.reuseEntryBudget())
	defer cancel()
	backoff := reuseEntryBackoff
	for attempt := 1; ; attempt++ {
		e, err := f.addEntry(ctx, kind, id, reason)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			return e, attempt, err
		}
		if attempt == reuseEntryAttempts {
			f.unwritten(kind, id, reason)
			return e, attempt, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			f.unwritten(kind, id, reason)
			return e, attempt, err
		case <-t.C:
		}
		backoff *= 2
	}
}

// resealEntry writes the entry of kind:id again after the store step that
// ended the sessions it names. A refresh racing the sign-out (its mirror
// check just before the first entry arrived, its store step just before
// the sessions ended) advanced its session and minted an access token
// after the first entry's before, which that entry does not deny. No
// refresh gets past the store after the step, so an entry written after
// it denies every access token the device or account holds. As for a
// reuse, no client would retry this write: it is retried here, and a final
// failure is logged and counted, and still applied to this node's mirror
// (unwritten); the first entry and the store step stand either way. It
// returns the entry in force.
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
	if e, err := revocation.NewEntry(kind, id, reason, f.now().UTC(), f.cfg.EntryTTL); err == nil {
		f.cfg.Observe(e)
	}
}

func (f *Flows) revocationWriteFailed() {
	if o, ok := f.obs.(RevocationWriteObserver); ok {
		o.RevocationWriteFailed()
	}
}

// addEntry is AddEntry without the failure count.
func (f *Flows) addEntry(ctx context.Context, kind revocation.Kind, id, reason string) (revocation.Entry, error) {
	if f.cfg.Revocations == nil {
		return revocation.Entry{}, nil
	}
	e, err := revocation.NewEntry(kind, id, reason, f.now().UTC(), f.cfg.EntryTTL)
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
// account entry, ends the matching sessions right after, so the device or
// account stays out when the entry expires, and then writes the entry
// again (resealEntry) for a refresh that raced the step; it returns the
// entry in force. An id with no session is not an error: entries may name
// devices this store does not know.
func (f *Flows) Revoke(ctx context.Context, kind revocation.Kind, id, reason string) (revocation.Entry, error) {
	e, err := f.AddEntry(ctx, kind, id, reason)
	if err != nil {
		return e, err
	}
	now := f.now().UTC()
	var end func(ctx context.Context) error
	switch kind {
	case revocation.KindDevice:
		end = func(ctx context.Context) error { return f.cfg.Store.EndSession(ctx, id, now) }
	case revocation.KindAccount:
		end = func(ctx context.Context) error { _, err := f.cfg.Store.EndAccountSessions(ctx, id, now); return err }
	default:
		return e, nil
	}
	switch err := f.call(ctx, "end_sessions", end); {
	case errors.Is(err, account.ErrNotFound):
		return e, nil // no session: nothing could race
	case err != nil:
		return e, storeErr("end_sessions", err)
	}
	return f.resealEntry(ctx, e, kind, id, reason), nil
}

// RevokeDevice signs a device out (logout, self-service, admin): a device
// entry, so that every mirror refuses the device's access tokens, then the
// session ended and the device marked revoked, so refresh stops working.
// The entry is written first: if the session step then fails the call fails
// and can be retried, and the device is already denied. After the step the
// entry is written again (resealEntry), for a refresh that raced it.
// Revoking a revoked device succeeds again.
func (f *Flows) RevokeDevice(ctx context.Context, deviceID, reason string) error {
	first, err := f.AddEntry(ctx, revocation.KindDevice, deviceID, reason)
	if err != nil {
		return err
	}
	now := f.now().UTC()
	if err := f.call(ctx, "end_session", func(ctx context.Context) error {
		return f.cfg.Store.EndSession(ctx, deviceID, now)
	}); err != nil {
		return storeErr("end_session", err)
	}
	f.resealEntry(ctx, first, revocation.KindDevice, deviceID, reason)
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
