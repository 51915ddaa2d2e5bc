package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store errors.
var (
	ErrNotFound       = errors.New("account: not found")
	ErrExists         = errors.New("account: id already exists")
	ErrSessionEnded   = errors.New("account: device session ended")
	ErrUnavailable    = errors.New("account: store unavailable")
	ErrInvalidRequest = errors.New("account: invalid store request")
	// ErrBanned: AddDevice for a banned account.
	ErrBanned = errors.New("account: account banned")
	// ErrTooMany: CreateLinkCode with maxLive live codes already, or
	// AddRecoveryCode with maxCodes codes already.
	ErrTooMany = errors.New("account: too many live codes")
)

// ID prefixes, for humans. The rest of an id is 128 random bits, base64url.
const (
	AccountPrefix = "acc_"
	DevicePrefix  = "dev_"
)

// NewID returns prefix + 128 random bits from rand (crypto/rand when nil).
func NewID(prefix string, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("account: random id: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidID reports whether s is a well-formed id with the prefix: used to
// refuse junk before it reaches a store key.
func ValidID(prefix, s string) bool {
	if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+22 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s[len(prefix):])
	return err == nil
}

// Account is a user account. It holds no secret.
type Account struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`     // display form
	UsernameKey string    `json:"username_key"` // mapped form, unique
	Created     time.Time `json:"created"`
	Banned      bool      `json:"banned"`
	// RecoverySalt and RecoveryCodes: the keyed digests of the account's
	// unused recovery codes (HMAC-SHA-256 under the issuer's pepper, over
	// the salt and the code), ordered by byte value. The store never sees
	// a code.
	RecoverySalt  []byte   `json:"recovery_salt,omitempty"`
	RecoveryCodes [][]byte `json:"recovery_codes,omitempty"`
}

// RecoveryCodesLeft is the number of unused recovery codes.
func (a Account) RecoveryCodesLeft() int { return len(a.RecoveryCodes) }

// LinkCode is a live code that lets a new device join an account. The
// store keeps only its keyed digest (HMAC-SHA-256 under the issuer's
// pepper), never the code.
type LinkCode struct {
	Digest    []byte
	AccountID string
	// DeviceID is the device that made the code: the code is good only
	// while that device is active (a code made on a stolen phone must die
	// with the phone's session). Codes stored before it was recorded have
	// none and are good until they expire.
	DeviceID string
	Created  time.Time
	Expires  time.Time
}

// Device is one app install bound to one device key.
type Device struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	Name      string    `json:"name"`
	JKT       string    `json:"jkt"` // RFC 7638 thumbprint of the device key; never changes
	Created   time.Time `json:"created"`
	LastUsed  time.Time `json:"last_used"`
	Revoked   time.Time `json:"revoked,omitempty"` // zero while active
}

// Active reports whether the device has not been revoked or logged out.
func (d Device) Active() bool { return d.Revoked.IsZero() }

// Session is the refresh-token chain of one device (its id is the device
// id). Counter is the counter of the one refresh token that may be used
// next.
type Session struct {
	DeviceID  string    `json:"device_id"`
	AccountID string    `json:"account_id"`
	JKT       string    `json:"jkt"`
	Counter   uint64    `json:"counter"`
	Created   time.Time `json:"created"`
	LastUsed  time.Time `json:"last_used"`
	Expires   time.Time `json:"expires"` // absolute end of the chain
	// GraceUntil and Successor: after a rotation, a retry with the previous
	// token until GraceUntil gets Successor again. Successor is sealed by
	// the issuer (the store never sees a usable token).
	GraceUntil time.Time `json:"grace_until,omitempty"`
	Successor  []byte    `json:"successor,omitempty"`
	// RetryDigest is the SHA-256 digest of the retry id of the refresh that
	// stored Successor (nil when it carried none): a retry of the previous
	// token with the same id after GraceUntil gets Successor again
	// (RefreshRetried). Only the digest is kept.
	RetryDigest []byte    `json:"retry_digest,omitempty"`
	Ended       time.Time `json:"ended,omitempty"` // zero while the chain lives
}

// RefreshOutcome is what the atomic refresh step decided.
type RefreshOutcome int

const (
	// RefreshAdvanced: the token was current; the counter advanced and the
	// request's successor was stored.
	RefreshAdvanced RefreshOutcome = iota + 1
	// RefreshGrace: the token was the previous one, within the grace window;
	// the stored successor is returned again.
	RefreshGrace
	// RefreshReused: an older token, or the previous one after the grace
	// window: the session was ended (reuse detected).
	RefreshReused
	// RefreshRejected: the session is ended, expired or idle too long, or
	// the account is banned; nothing changed.
	RefreshRejected
	// RefreshRetried: the token was the previous one, after the grace
	// window, and the request's retry digest equals the one stored by the
	// advance: the stored successor is returned again; only LastUsed (of
	// the session and the device) changed.
	RefreshRetried
)

func (o RefreshOutcome) String() string {
	switch o {
	case RefreshAdvanced:
		return "advanced"
	case RefreshGrace:
		return "grace"
	case RefreshReused:
		return "reused"
	case RefreshRejected:
		return "rejected"
	case RefreshRetried:
		return "retried"
	}
	return "unknown"
}

// RefreshRequest is one atomic refresh step.
type RefreshRequest struct {
	DeviceID string
	Counter  uint64 // the counter in the presented refresh token
	Now      time.Time
	Grace    time.Duration // window in which the previous token gets the same successor
	Idle     time.Duration // a session unused for longer has ended
	// Successor is the sealed successor pair for Counter+1, stored when the
	// step advances.
	Successor []byte
	// RetryDigest is the SHA-256 digest of the request's retry id, nil for
	// none (RetryDigestSize bytes otherwise). An advance stores it in place
	// of the previous one; a retry of the previous token after the grace
	// window with the stored digest is RefreshRetried.
	RetryDigest []byte
}

// RetryDigestSize is the length of a retry digest (SHA-256).
const RetryDigestSize = 32

// RefreshResult is the decision and, for Advanced, Grace and Retried, the
// successor to hand out.
type RefreshResult struct {
	Outcome   RefreshOutcome
	Successor []byte
}

// Store keeps accounts, devices and refresh sessions. Every method is safe
// for concurrent use; each state change is one atomic step (one bbolt
// transaction, one Redis Lua script; redisstore documents the one
// exception, a rename or the deletion of a renamed account, whose name
// records live on other Cluster slots). Implementations: boltstore,
// redisstore; the storetest package is their shared conformance suite.
type Store interface {
	Lifecycle
	// CreateAccount stores a new account with its first device and session,
	// in one step that also claims acc.UsernameKey: if the key is taken it
	// returns ErrUsernameTaken and stores nothing.
	CreateAccount(ctx context.Context, acc Account, dev Device, sess Session) error
	// AddDevice stores another device and session of an existing, not
	// banned account: ErrNotFound for a missing account, ErrBanned for a
	// banned one, ErrExists for a device id in use.
	AddDevice(ctx context.Context, dev Device, sess Session) error
	GetAccount(ctx context.Context, id string) (Account, error)
	GetAccountByUsername(ctx context.Context, usernameKey string) (Account, error)
	GetDevice(ctx context.Context, id string) (Device, error)
	// GetCaller reads the account accountID and its device deviceID in one
	// step (one bbolt read transaction; one Redis round trip once the
	// account's home is known): what an authenticated request needs. A
	// missing account or device, or a device of another account, is
	// ErrNotFound.
	GetCaller(ctx context.Context, accountID, deviceID string) (Account, Device, error)
	ListDevices(ctx context.Context, accountID string) ([]Device, error)
	GetSession(ctx context.Context, deviceID string) (Session, error)
	// Refresh applies the single-use rule atomically (see RefreshOutcome) and
	// updates LastUsed of the session and the device.
	Refresh(ctx context.Context, req RefreshRequest) (RefreshResult, error)
	// EndSession ends a device's session and marks the device revoked at
	// `at` (logout, reuse, admin). Ending an ended session is not an error.
	EndSession(ctx context.Context, deviceID string, at time.Time) error
	// SetBanned bans or unbans an account. A banned account cannot refresh
	// or add devices.
	SetBanned(ctx context.Context, accountID string, banned bool) error
	// Ping reports whether the store answers and accepts writes (it
	// writes a probe record): /readyz asks it.
	Ping(ctx context.Context) error
	Close() error
}

// ViewReader is implemented by stores that can answer "who is this
// account" for display from a per-node cache they keep in step with every
// write (redisstore with Options.ViewCache). A view may lag a change made
// through another node by a bounded time, which the store documents, and
// may leave out the recovery salt and code digests (RecoveryCodes then
// holds as many nil entries as the account has codes). Use it only where
// that is enough: the identity routes, whose device and account
// revocations reach them through the revocation mirror. Everything that
// decides or changes something reads with GetAccount or GetCaller.
type ViewReader interface {
	GetAccountView(ctx context.Context, id string) (Account, error)
}

// Lifecycle is the part of a Store that links devices, recovers, renames
// and deletes accounts. Codes reach it only as keyed digests. Malformed
// arguments (ids, digest lengths, maxLive or maxCodes below 1, zero times,
// see validate.go) are ErrInvalidRequest.
type Lifecycle interface {
	// CreateLinkCode stores a link code of an existing, not banned account
	// (ErrNotFound, ErrBanned), made by lc.DeviceID, an active device of
	// that account (ErrNotFound when it is not the account's,
	// ErrSessionEnded when it is revoked or its session ended). Codes of
	// the account expired at now are dropped first; with maxLive live
	// codes left it returns ErrTooMany and stores nothing. A digest
	// already in use is ErrExists; lc.Expires must be after now.
	CreateLinkCode(ctx context.Context, lc LinkCode, maxLive int, now time.Time) error
	// CountLinkCodes counts the account's codes live at now (ErrNotFound
	// for a missing account).
	CountLinkCodes(ctx context.Context, accountID string, now time.Time) (int, error)
	// RedeemLinkCode is one atomic step: the code with this digest, live at
	// now, is used up (marked redeemed by dev, see RedeemedLinkCode) and
	// dev and sess are added to its account (the store sets their
	// AccountID from the code). A missing, expired or used code,
	// or one whose maker (LinkCode.DeviceID) is no longer an active device
	// of the account (revoked, its session ended, gone), is ErrNotFound
	// (one answer for all); the maker is checked in the same step. A
	// banned account is ErrBanned (the code is kept). Of concurrent
	// redemptions of one code exactly one succeeds.
	RedeemLinkCode(ctx context.Context, digest []byte, now time.Time, dev Device, sess Session) (Account, error)
	// RedeemedLinkCode reports the account and the id of the device that
	// redeemed the code with this digest: the store keeps a redeemed
	// code's record, marked with that device, until the code would have
	// expired (it never counts as live and never redeems again), so a new
	// device whose answer was lost can retry. A code that is missing,
	// not redeemed, expired at now, or whose maker is no longer an active
	// device of the account is ErrNotFound (one answer, as for
	// RedeemLinkCode); a banned account is ErrBanned. It reads only: the
	// caller checks the device itself.
	RedeemedLinkCode(ctx context.Context, digest []byte, now time.Time) (Account, string, error)
	// LinkCodeMaker reports the code with this digest, live at now and not
	// redeemed: its account, the device that made it and when (Digest
	// empty). Any other code is ErrNotFound. It reads only, and checks
	// nothing of the maker: the caller asks its revocation entries, which
	// know of a sign-out whose store step failed.
	LinkCodeMaker(ctx context.Context, digest []byte, now time.Time) (LinkCode, error)
	// SetRecoveryCodes replaces the account's recovery codes (salt and
	// digests) with a new set: ErrNotFound for a missing account.
	SetRecoveryCodes(ctx context.Context, accountID string, salt []byte, digests [][]byte) error
	// AddRecoveryCode adds one digest to the account's codes (a support
	// code). salt must equal the account's salt, or the account has none
	// and salt becomes it (else ErrInvalidRequest); with maxCodes codes
	// already it is ErrTooMany. A digest the account has already is a
	// no-op; ErrNotFound for a missing account.
	AddRecoveryCode(ctx context.Context, accountID string, salt, digest []byte, maxCodes int) error
	// UseRecoveryCode is one atomic step: the digest is removed from the
	// account's codes and dev and sess are added to the account (the store
	// sets their AccountID); with signOutOthers every other live session of
	// the account ends at now (its device marked revoked) and its link codes
	// are dropped, in the same step, and the ended device ids are returned,
	// sorted. A digest that is not among the codes, or a missing
	// account, is ErrNotFound (nothing changes); a banned account
	// ErrBanned. Of concurrent uses of one code exactly one succeeds.
	UseRecoveryCode(ctx context.Context, accountID string, digest []byte, dev Device, sess Session, signOutOthers bool, now time.Time) (ended []string, err error)
	// EndAccountSessions ends every live session of the account at `at`,
	// marks its devices revoked and drops its link codes (a code made on a
	// device now signed out must not bring a new device in), in one step;
	// it returns the ids of the devices it ended (sorted), not those ended
	// before. ErrNotFound for a missing account.
	EndAccountSessions(ctx context.Context, accountID string, at time.Time) ([]string, error)
	// DeleteAccount removes the account with its devices, sessions, link
	// and recovery codes in one step, and keeps a tombstone that holds its
	// username key until holdUntil: meanwhile GetAccount,
	// GetAccountByUsername, GetDevice and GetSession answer ErrNotFound,
	// and CreateAccount (whose acc.Created is its now) and RenameAccount
	// with that key answer ErrUsernameTaken; after holdUntil the name is
	// free. ErrNotFound for a missing account.
	DeleteAccount(ctx context.Context, accountID string, now, holdUntil time.Time) error
	// RenameAccount atomically claims newKey (display newDisplay) for the
	// account and holds the old key until holdUntil, as a deletion does.
	// ErrUsernameTaken when newKey is registered or held at now (renaming
	// to the account's own key is a no-op that succeeds); ErrNotFound for a
	// missing account.
	RenameAccount(ctx context.Context, accountID, newDisplay, newKey string, now, holdUntil time.Time) error
}

// Lister walks every account of a store, for maintenance (a username
// report after a policy change); both engines implement it. fn is called
// once per account, in no particular order and maybe from several
// goroutines one at a time; an error from fn stops the walk.
type Lister interface {
	Accounts(ctx context.Context, fn func(Account) error) error
}
