package flow

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/revocation"
)

// RecoveryCodeCount is how many recovery codes a set holds.
const RecoveryCodeCount = 10

// CreateRecoveryCodes makes a new set of recovery codes for the account,
// replacing any earlier set, and returns them: the only time they are
// shown. The store keeps a fresh per-account salt and the codes' keyed
// digests.
func (f *Flows) CreateRecoveryCodes(ctx context.Context, accountID string) ([]string, error) {
	if _, err := f.pepper(); err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(f.cfg.Rand, salt); err != nil {
		return nil, fail(ErrInternal, err)
	}
	codes := make([]string, RecoveryCodeCount)
	digests := make([][]byte, RecoveryCodeCount)
	for i := range codes {
		c, err := newCode(f.cfg.Rand, RecoveryCodeLen, recoveryGroup)
		if err != nil {
			return nil, fail(ErrInternal, err)
		}
		canon, _ := normalizeCode(c, RecoveryCodeLen)
		codes[i], digests[i] = c, f.cfg.Pepper.Digests(recoveryMessage(salt, canon))[0]
	}
	if err := f.call(ctx, "set_recovery_codes", func(ctx context.Context) error {
		return f.cfg.Store.SetRecoveryCodes(ctx, accountID, salt, digests)
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return nil, fail(ErrTokenRevoked, err)
		}
		return nil, storeErr("set_recovery_codes", err)
	}
	return codes, nil
}

// SupportCode issues one more recovery code for the account (an operator
// helping an owner who proved themselves out of band). At most
// RecoveryCodeCount codes are live at once.
func (f *Flows) SupportCode(ctx context.Context, accountID string) (string, error) {
	if _, err := f.pepper(); err != nil {
		return "", err
	}
	acc, err := f.Account(ctx, accountID)
	if err != nil {
		return "", err
	}
	salt := acc.RecoverySalt
	if len(salt) == 0 {
		salt = make([]byte, 16)
		if _, err := io.ReadFull(f.cfg.Rand, salt); err != nil {
			return "", fail(ErrInternal, err)
		}
	}
	code, err := newCode(f.cfg.Rand, RecoveryCodeLen, recoveryGroup)
	if err != nil {
		return "", fail(ErrInternal, err)
	}
	canon, _ := normalizeCode(code, RecoveryCodeLen)
	digest := f.cfg.Pepper.Digests(recoveryMessage(salt, canon))[0]
	if err := f.call(ctx, "add_recovery_code", func(ctx context.Context) error {
		return f.cfg.Store.AddRecoveryCode(ctx, accountID, salt, digest, RecoveryCodeCount)
	}); err != nil {
		if errors.Is(err, account.ErrTooMany) {
			return "", &Error{Code: ErrInvalidRequest.Code, Detail: "The account already holds the most recovery codes allowed.", Err: err}
		}
		return "", storeErr("add_recovery_code", err)
	}
	return code, nil
}

// RecoverRequest brings an account back on a new device with a recovery
// code.
type RecoverRequest struct {
	Username     string // tainted
	RecoveryCode string // tainted, as typed
	DeviceName   string
	// SignOutOthers ends every other session of the account in the same
	// step (a lost or stolen phone is why people recover).
	SignOutOthers bool
	Proof         Proof
	// ClientKey is the client's address (an IPv4 address or an IPv6 /64)
	// for the per-account budget: each address has its own, so guessing
	// from other addresses never locks the owner out.
	ClientKey string
}

// Recover adds a new device to the account of a username with one of its
// recovery codes, which is used up. Order: device name -> proof (a request
// without a valid proof never spends budget or codes) -> the per-account
// budget of this client address -> the account by username -> one atomic
// UseRecoveryCode (code used up, device added, other sessions ended) ->
// device entries for the sessions it ended. A code that matches none is
// checked for a retry after a lost answer (recoverRetried). A wrong code
// and an unknown username are one answer, ErrInvalidRecoveryCode, and cost
// the same work (a digest is computed and the store asked, then the
// account's devices listed, in both cases).
func (f *Flows) Recover(ctx context.Context, req RecoverRequest) (Tokens, error) {
	proof, err := f.admitNewDevice(ctx, req.DeviceName, req.Proof)
	if err != nil {
		return Tokens{}, err
	}
	if _, err := f.signingKey(); err != nil {
		return Tokens{}, err
	}
	acc, found, err := f.accountForRecovery(ctx, req)
	if err != nil {
		return Tokens{}, err
	}
	dev, sess, err := f.newDevice(acc.ID, req.DeviceName, proof.JKT)
	if err != nil {
		return Tokens{}, err
	}
	if !req.SignOutOthers {
		if err := f.recoveryRoom(ctx, acc.ID); err != nil {
			return Tokens{}, err
		}
	}
	// Minted before the step that makes the device, as a refresh mints
	// before its step: a sign-out of the new device (or a ban) while the
	// other devices' entries are written below then denies the pair by
	// its device entry's margin or its account entry, however long those
	// writes take. The stand-in of an unknown name mints too (same cost).
	out, err := f.firstTokens(acc, dev, sess)
	if err != nil {
		return Tokens{}, err
	}
	ended, err := f.useRecoveryCode(ctx, acc, req, dev, sess)
	if errors.Is(err, account.ErrNotFound) {
		return f.recoverRetried(ctx, acc, proof.JKT, err)
	}
	if err != nil {
		return Tokens{}, err
	}
	if !found { // unreachable: an unknown name's store call finds nothing
		return Tokens{}, fail(ErrInvalidRecoveryCode, errors.New("unknown username"))
	}
	for _, id := range ended {
		const reason = "signed out by account recovery"
		if _, err := f.addEntry(ctx, revocation.KindDevice, id, reason); err != nil {
			f.unwritten(revocation.KindDevice, id, reason)
			f.log.LogAttrs(ctx, slog.LevelError, "adding the device revocation after a recovery failed",
				slog.String("device_id", id), slog.String("error", err.Error()))
		}
	}
	return out, nil
}

// recoverRetried answers a recovery code that matches none of the
// account's codes. When the account has a device bound to this very key,
// made within SignupRetryWindow, active and never refreshed, this is that
// device's retry of a recovery whose answer it lost (the code was used up
// then, so it matches no more): it gets that device with a fresh first
// pair, as signupRetried does, and nothing else happens (the other
// devices were signed out, if asked, by the first attempt; the retried
// device is not). Only the holder of the key can make the proof. The
// attempt has spent the budget like any other. Anything else is cause,
// the ErrInvalidRecoveryCode of the code that matched none. The stand-in account of an unknown name is
// listed too (it has no devices), so both cost the same store read.
func (f *Flows) recoverRetried(ctx context.Context, acc account.Account, jkt string, cause error) (Tokens, error) {
	now := f.now().UTC()
	var devs []account.Device
	err := f.call(ctx, "list_devices", func(ctx context.Context) error {
		d, err := f.cfg.Store.ListDevices(ctx, acc.ID)
		if err == nil {
			devs = d
		}
		return err
	})
	switch {
	case errors.Is(err, account.ErrNotFound):
		devs = nil
	case err != nil:
		return Tokens{}, storeErr("list_devices", err)
	}
	for _, d := range devs {
		if d.AccountID == acc.ID && d.JKT == jkt && d.Active() && !d.Created.After(now) && now.Sub(d.Created) <= SignupRetryWindow {
			return f.retriedDevice(ctx, acc, d.ID, jkt, ErrInvalidRecoveryCode)
		}
	}
	return Tokens{}, cause
}

// accountForRecovery finds the account of the username after the
// per-account budget of this client allowed the attempt. For a name that
// is invalid or unknown it returns a stand-in account (random id and salt)
// and found false, so the rest of the flow does the same work.
func (f *Flows) accountForRecovery(ctx context.Context, req RecoverRequest) (account.Account, bool, error) {
	stand, err := f.standIn()
	if err != nil {
		return stand, false, err
	}
	// The lookup key, not the policy: a name registered before a policy
	// change must still be found.
	key, err := account.UsernameKey(req.Username)
	if err != nil {
		return stand, false, f.recoverBudget(ctx, "invalid", req.ClientKey)
	}
	if err := f.recoverBudget(ctx, key, req.ClientKey); err != nil {
		return stand, false, err
	}
	var acc account.Account
	err = f.call(ctx, "get_account_by_username", func(ctx context.Context) error {
		a, err := f.cfg.Store.GetAccountByUsername(ctx, key)
		if err == nil {
			acc = a
		}
		return err
	})
	switch {
	case errors.Is(err, account.ErrNotFound):
		return stand, false, nil
	case err != nil:
		return stand, false, storeErr("get_account_by_username", err)
	}
	return acc, true, nil
}

// standIn is an account that does not exist, for an unknown username.
func (f *Flows) standIn() (account.Account, error) {
	id, err := account.NewID(account.AccountPrefix, rand.Reader)
	if err != nil {
		return account.Account{}, fail(ErrInternal, err)
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, salt); err != nil {
		return account.Account{}, fail(ErrInternal, err)
	}
	return account.Account{ID: id, RecoverySalt: salt}, nil
}

// recoverBudget spends one attempt of the budget of (username, client
// address). Each address has its own budget per account: an attacker can
// exhaust only the budgets of the addresses it uses, never the owner's
// (unless it shares the owner's address, as behind one carrier NAT, and
// then only for the rule's period). 100-bit codes make guessing hopeless
// whatever the number of addresses; the budget is a tripwire. A NUL,
// which neither part can hold, separates them: with ':' a username
// holding one and an IPv6 client key could name another pair's budget.
func (f *Flows) recoverBudget(ctx context.Context, usernameKey, clientKey string) error {
	return f.spend(ctx, "recover:account:"+usernameKey+"\x00"+clientKey, f.cfg.RecoverPerAccount,
		"recovery budget of this account and address spent")
}

// useRecoveryCode spends the code: one atomic store step per pepper the
// issuer holds (a code made before a pepper rotation still works).
func (f *Flows) useRecoveryCode(ctx context.Context, acc account.Account, req RecoverRequest, dev account.Device, sess account.Session) ([]string, error) {
	canon, err := normalizeCode(req.RecoveryCode, RecoveryCodeLen)
	if err != nil {
		return nil, fail(ErrInvalidRecoveryCode, err)
	}
	var ended []string
	for _, digest := range f.cfg.Pepper.Digests(recoveryMessage(acc.RecoverySalt, canon)) {
		err = f.call(ctx, "use_recovery_code", func(ctx context.Context) error {
			e, err := f.cfg.Store.UseRecoveryCode(ctx, acc.ID, digest, dev, sess, req.SignOutOthers, sess.Created)
			if err == nil {
				ended = e
			}
			return err
		})
		if !errors.Is(err, account.ErrNotFound) {
			break
		}
	}
	switch {
	case errors.Is(err, account.ErrNotFound), errors.Is(err, account.ErrBanned):
		return nil, fail(ErrInvalidRecoveryCode, err)
	case err != nil:
		return nil, storeErr("use_recovery_code", err)
	}
	return ended, nil
}
