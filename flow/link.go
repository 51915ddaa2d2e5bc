package flow

import (
	"context"
	"errors"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/problem"
	"github.com/hallpass/hallpass/revocation"
)

// Link-code sentinels.
var (
	ErrInvalidLinkCode     = &Error{Code: problem.InvalidLinkCode}
	ErrInvalidRecoveryCode = &Error{Code: problem.InvalidRecoveryCode}
	ErrRateLimited         = &Error{Code: problem.RateLimited}
)

// LinkCode is a fresh link code as its owner sees it, once.
type LinkCode struct {
	Code    string // XXXX-XXXX-XXXX
	Expires time.Time
}

// CreateLinkCode makes a single-use link code for the caller's account,
// made by the caller's device, live Config.LinkCodeTTL, at most
// Config.MaxLinkCodes live at once (the oldest are not replaced:
// ErrRateLimited asks to wait or use one), and none when the account's
// active devices and live codes reach Config.MaxDevices (ErrDeviceLimit:
// sign a device out first; linkCodeRoom). Only its keyed digest is
// stored, with the device: the code is good only while that device is
// active, so revoking it or ending its session voids the code too.
func (f *Flows) CreateLinkCode(ctx context.Context, accountID, deviceID string) (LinkCode, error) {
	if _, err := f.pepper(); err != nil {
		return LinkCode{}, err
	}
	room, capped, err := f.linkCodeRoom(ctx, accountID)
	if err != nil {
		return LinkCode{}, err
	}
	if room < 1 {
		return LinkCode{}, f.deviceLimit(errors.New("active devices at the limit"))
	}
	code, err := newCode(f.cfg.Rand, LinkCodeLen, linkCodeGroup)
	if err != nil {
		return LinkCode{}, fail(ErrInternal, err)
	}
	canon, _ := normalizeCode(code, LinkCodeLen)
	now := f.now().UTC()
	lc := account.LinkCode{Digest: f.cfg.Pepper.Digests(linkMessage(canon))[0], AccountID: accountID, DeviceID: deviceID,
		Created: now, Expires: now.Add(f.cfg.LinkCodeTTL)}
	if err := f.call(ctx, "create_link_code", func(ctx context.Context) error {
		return f.cfg.Store.CreateLinkCode(ctx, lc, room, now)
	}); err != nil {
		switch {
		case errors.Is(err, account.ErrTooMany) && capped:
			return LinkCode{}, f.deviceLimit(err)
		case errors.Is(err, account.ErrTooMany):
			return LinkCode{}, &Error{Code: problem.RateLimited, Detail: "This account has as many live link codes as allowed; use one or wait until one expires.", Err: err, RetryAfter: f.cfg.LinkCodeTTL}
		case errors.Is(err, account.ErrNotFound), errors.Is(err, account.ErrBanned), errors.Is(err, account.ErrSessionEnded):
			return LinkCode{}, fail(ErrTokenRevoked, err)
		}
		return LinkCode{}, storeErr("create_link_code", err)
	}
	return LinkCode{Code: code, Expires: lc.Expires}, nil
}

// LinkRequest redeems a link code on a new device.
type LinkRequest struct {
	Code       string // tainted, as typed
	DeviceName string
	// Proof proves the new device's key (with a server nonce when
	// configured), as at signup.
	Proof Proof
}

// Link adds a new device to the account of a live link code and starts its
// session: the same answer as a signup, for the code's account. Order:
// device name -> proof (before the code is touched, so a request without
// a valid proof never uses a code up) -> one atomic RedeemLinkCode (the
// code used up and the device added together; of concurrent redemptions
// exactly one wins). A code already used is a retry when this very key
// used it and nothing happened since (linkRetried). A wrong, expired or
// used code is one answer, ErrInvalidLinkCode. Per-address limits are the
// transport's.
func (f *Flows) Link(ctx context.Context, req LinkRequest) (Tokens, error) {
	proof, err := f.admitNewDevice(ctx, req.DeviceName, req.Proof)
	if err != nil {
		return Tokens{}, err
	}
	canon, err := normalizeCode(req.Code, LinkCodeLen)
	if err != nil {
		return Tokens{}, fail(ErrInvalidLinkCode, err)
	}
	if _, err := f.signingKey(); err != nil {
		return Tokens{}, err // before the code is used up
	}
	dev, sess, err := f.newDevice("", req.DeviceName, proof.JKT)
	if err != nil {
		return Tokens{}, err
	}
	acc, out, err := f.redeemLink(ctx, canon, dev, sess)
	switch {
	case errors.Is(err, account.ErrNotFound):
		return f.linkRetried(ctx, canon, proof.JKT)
	case err != nil:
		return Tokens{}, err
	case out.AccountID != acc.ID: // not minted ahead: a code the store did not report
		return f.firstTokens(acc, dev, sess)
	}
	out.Username = acc.Username
	return out, nil
}

// redeemLink redeems the code (each pepper's digest, current first, until
// one is found) with dev and sess, and returns the code's account and the
// first pair. The pair is minted before the store step, as a signup's and
// a refresh's are, for the account the store reports for the code
// (checkLinkMaker), so a ban or a sign-out of the device stored before the
// mint is newer than the token and denies it. The code not found is
// account.ErrNotFound; other errors are flow errors.
func (f *Flows) redeemLink(ctx context.Context, canon string, dev account.Device, sess account.Session) (account.Account, Tokens, error) {
	var acc account.Account
	var out Tokens
	var err error
	for _, digest := range f.cfg.Pepper.Digests(linkMessage(canon)) {
		accID, cerr := f.checkLinkMaker(ctx, digest, sess.Created)
		if cerr != nil {
			return acc, Tokens{}, cerr
		}
		if accID != "" {
			if out, err = f.firstTokens(account.Account{ID: accID}, dev, sess); err != nil {
				return acc, Tokens{}, err
			}
		}
		err = f.call(ctx, "redeem_link_code", func(ctx context.Context) error {
			a, err := f.cfg.Store.RedeemLinkCode(ctx, digest, sess.Created, dev, sess)
			if err == nil {
				acc = a
			}
			return err
		})
		if !errors.Is(err, account.ErrNotFound) {
			break
		}
	}
	switch {
	case errors.Is(err, account.ErrNotFound):
		return acc, Tokens{}, err
	case errors.Is(err, account.ErrBanned):
		return acc, Tokens{}, fail(ErrInvalidLinkCode, err)
	case err != nil:
		return acc, Tokens{}, storeErr("redeem_link_code", err)
	}
	return acc, out, nil
}

// checkLinkMaker asks the revocation entries about the device that made
// the live code with this digest, before it is redeemed. The store's step
// checks that the maker is active there, but a sign-out whose store step
// failed for good (endStep) leaves it active in the store, and only its
// device entry says it is out: a code made on a stolen phone that its
// owner signed out would still add the thief's device. An entry for the
// maker or its account newer than the code refuses it
// (ErrInvalidLinkCode, the one answer) and ends the maker's session, as a
// refresh meeting the entry would; a mirror that cannot vouch is
// ErrUnavailable. A code the store does not report (none, expired, used,
// another pepper's digest, or made before makers were recorded) is left
// to the redemption. It returns the code's account ("" when the store did
// not report the code).
func (f *Flows) checkLinkMaker(ctx context.Context, digest []byte, now time.Time) (string, error) {
	var lc account.LinkCode
	err := f.call(ctx, "link_code_maker", func(ctx context.Context) error {
		var err error
		lc, err = f.cfg.Store.LinkCodeMaker(ctx, digest, now)
		return err
	})
	switch {
	case errors.Is(err, account.ErrNotFound):
		return "", nil
	case err != nil:
		return "", storeErr("link_code_maker", err)
	case lc.DeviceID == "" || f.cfg.Sessions == nil:
		return lc.AccountID, nil
	}
	switch err := f.cfg.Sessions.CheckSession(ctx, lc.DeviceID, lc.AccountID, lc.Created); {
	case errors.Is(err, revocation.ErrStale):
		return "", fail(ErrUnavailable, err)
	case err != nil:
		at := f.now().UTC()
		if cerr := f.call(ctx, "end_session", func(ctx context.Context) error {
			return f.cfg.Store.EndSession(ctx, lc.DeviceID, at)
		}); cerr != nil && !errors.Is(cerr, account.ErrNotFound) {
			return "", storeErr("end_session", cerr)
		}
		return "", fail(ErrInvalidLinkCode, err)
	}
	return lc.AccountID, nil
}

// linkRetried answers a code that is not live. When it was redeemed
// within its lifetime (and its maker is still active) by a device bound
// to this very key, still active and never refreshed, this is that
// device's retry of a link whose answer it lost (a 503 while the store
// was slow, a dropped connection): it gets that device with a fresh
// first pair, as signupRetried does. Only the holder of the key can make
// the proof, so the pair goes to nobody else. Anything else is the one
// answer, ErrInvalidLinkCode; a store that does not answer is
// ErrUnavailable (the client may try again).
func (f *Flows) linkRetried(ctx context.Context, canon, jkt string) (Tokens, error) {
	now := f.now().UTC()
	var err error
	for _, digest := range f.cfg.Pepper.Digests(linkMessage(canon)) {
		var acc account.Account
		var devID string
		err = f.call(ctx, "redeemed_link_code", func(ctx context.Context) error {
			a, id, err := f.cfg.Store.RedeemedLinkCode(ctx, digest, now)
			if err == nil {
				acc, devID = a, id
			}
			return err
		})
		if err == nil {
			return f.retriedDevice(ctx, acc, devID, jkt, ErrInvalidLinkCode)
		}
		if !errors.Is(err, account.ErrNotFound) {
			break
		}
	}
	if errors.Is(err, account.ErrNotFound) || errors.Is(err, account.ErrBanned) {
		return Tokens{}, fail(ErrInvalidLinkCode, err)
	}
	return Tokens{}, storeErr("redeemed_link_code", err)
}

// retriedDevice gives device devID of acc a fresh first pair when it is
// a new device's retry after a lost answer: bound to jkt, active, and its
// session never refreshed (counter 0, not ended), and no revocation entry
// written since denies it (retryPair). Otherwise it answers refuse; a
// store that does not answer is ErrUnavailable.
func (f *Flows) retriedDevice(ctx context.Context, acc account.Account, devID, jkt string, refuse *Error) (Tokens, error) {
	var dev account.Device
	var sess account.Session
	err := f.call(ctx, "get_device_session", func(ctx context.Context) error {
		d, err := f.cfg.Store.GetDevice(ctx, devID)
		if err != nil {
			return err
		}
		se, err := f.cfg.Store.GetSession(ctx, devID)
		if err == nil {
			dev, sess = d, se
		}
		return err
	})
	switch {
	case errors.Is(err, account.ErrNotFound):
		return Tokens{}, fail(refuse, err)
	case err != nil:
		return Tokens{}, storeErr("get_device_session", err)
	}
	if acc.Banned || dev.AccountID != acc.ID || dev.JKT != jkt || !dev.Active() ||
		sess.AccountID != acc.ID || sess.JKT != jkt || sess.Counter != 0 || !sess.Ended.IsZero() {
		return Tokens{}, fail(refuse, errors.New("not a retry of this device's first answer"))
	}
	return f.retryPair(ctx, acc, dev.ID, sess, refuse)
}

// retryPair mints the fresh first pair of a retry after a lost answer
// (signupRetried, linkRetried, recoverRetried), once the store showed the
// device active and its session never refreshed. The store alone cannot
// vouch for that: a sign-out, ban or admin entry whose store step failed
// for good (endStep) leaves the session live there, and only its
// revocation entry says the device is out. So the entries are asked, as a
// refresh asks them, with the session's start as the issue time (that of
// the pair whose answer was lost): an entry for the device or its account
// written since refuses the retry (refuse, the flow's one answer) and
// ends the session, as a refresh meeting it would; a mirror that cannot
// vouch is ErrUnavailable. Minted after the entry, the pair would
// otherwise be newer than it and pass every mirror. The pair is minted
// before the check, so an entry made after the check is newer than the
// access token and denies it (minted after the check, the token outlived
// a sign-out or ban that ended in between: an account entry has no
// margin). The refresh token carries the session's start, so such an
// entry refuses it too. An entry made on another node just before the
// check and not yet in this node's mirror may still miss the token.
func (f *Flows) retryPair(ctx context.Context, acc account.Account, devID string, sess account.Session, refuse *Error) (Tokens, error) {
	out, err := f.mintPair(sess, 0, sess.Created)
	if err != nil {
		return Tokens{}, err
	}
	if f.cfg.Sessions != nil {
		switch err := f.cfg.Sessions.CheckSession(ctx, devID, acc.ID, sess.Created); {
		case errors.Is(err, revocation.ErrStale):
			return Tokens{}, fail(ErrUnavailable, err)
		case err != nil:
			at := f.now().UTC()
			if cerr := f.call(ctx, "end_session", func(ctx context.Context) error {
				return f.cfg.Store.EndSession(ctx, devID, at)
			}); cerr != nil {
				return Tokens{}, storeErr("end_session", cerr)
			}
			return Tokens{}, fail(refuse, err)
		}
	}
	out.AccountID, out.Username, out.DeviceID = acc.ID, acc.Username, devID
	return out, nil
}

// newDevice makes the records of a new device of accountID ("" when the
// store fills it in) bound to jkt, with a session starting now.
func (f *Flows) newDevice(accountID, name, jkt string) (account.Device, account.Session, error) {
	devID, err := account.NewID(account.DevicePrefix, f.cfg.Rand)
	if err != nil {
		return account.Device{}, account.Session{}, fail(ErrInternal, err)
	}
	now := f.now().UTC()
	dev := account.Device{ID: devID, AccountID: accountID, Name: name, JKT: jkt, Created: now, LastUsed: now}
	sess := account.Session{DeviceID: devID, AccountID: accountID, JKT: jkt, Created: now, LastUsed: now, Expires: now.Add(f.cfg.RefreshTTL)}
	return dev, sess, nil
}

// firstTokens mints the first pair of a device that joins acc. Link and
// Recover call it before their store step, so that an entry stored after
// the step (a ban, a sign-out of the new device) is newer than the token
// and denies it; a link whose code the store did not report ahead calls
// it after the step (a failure there leaves a device whose tokens nobody
// holds, which the owner can sign out from another device).
func (f *Flows) firstTokens(acc account.Account, dev account.Device, sess account.Session) (Tokens, error) {
	sess.AccountID = acc.ID
	out, err := f.mintPair(sess, 0, sess.Created)
	if err != nil {
		return Tokens{}, err
	}
	out.AccountID, out.Username, out.DeviceID = acc.ID, acc.Username, dev.ID
	return out, nil
}

func errDeviceName() *Error {
	return &Error{Code: ErrInvalidRequest.Code, Detail: "device_name must be printable text of at most the configured length.", Err: errors.New("device_name invalid")}
}

// LiveLinkCodes counts the account's live link codes.
func (f *Flows) LiveLinkCodes(ctx context.Context, accountID string) (int, error) {
	return read(ctx, f, "count_link_codes", func(ctx context.Context) (int, error) {
		return f.cfg.Store.CountLinkCodes(ctx, accountID, f.now().UTC())
	})
}

// admitNewDevice runs what a request adding a device to an existing
// account checks before it touches any code: a pepper configured (codes
// are keyed by it), the device name, and the proof of the new device's
// key (so a request without one never uses a code or budget up).
func (f *Flows) admitNewDevice(ctx context.Context, name string, p Proof) (*dpop.Proof, error) {
	if _, err := f.pepper(); err != nil {
		return nil, err
	}
	if !ValidDeviceName(name, f.cfg.MaxDeviceName) {
		return nil, errDeviceName()
	}
	return f.verifyProof(ctx, p, "")
}
