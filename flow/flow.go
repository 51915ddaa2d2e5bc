package flow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/storecall"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
)

// KeySource gives the current signing key; nil means none is loaded.
type KeySource interface {
	Current() *keys.SecretKey
}

// Observer is told what the flows do, for metrics. Every method must be
// cheap and safe for concurrent use.
type Observer interface {
	StoreCall(op string, d time.Duration)
	ProofRefused(code string)
	SignedUp()
	// Refreshed reports the outcome of a refresh the store decided.
	Refreshed(outcome account.RefreshOutcome)
}

// Config configures the flows. Every field without a stated default is
// required; New validates them. The issuer fills it from its own
// validated configuration.
type Config struct {
	// PublicURL is the issuer's canonical public URL (no trailing slash),
	// named in the detail of an htu mismatch.
	PublicURL string
	Store     account.Store
	Keys      KeySource
	Refresh   *refresh.Codec
	Minter    *token.Minter
	Usernames *account.UsernamePolicy
	// MaxDeviceName bounds device_name in characters.
	MaxDeviceName int
	// RefreshTTL, RefreshIdle and RefreshGrace: see issuer.Config.
	RefreshTTL, RefreshIdle, RefreshGrace time.Duration
	// EntryTTL is how long a token, device or account revocation entry
	// lives (revocation.EntryTTL of the access-token lifetime).
	EntryTTL time.Duration
	// DPoP verifies proofs (Replay required; Nonces is set by the flows
	// that demand a nonce, from Nonces below).
	DPoP dpop.Options
	// Nonces, when set, is demanded on signup and refresh proofs.
	Nonces dpop.NonceChecker
	// Revocations, when set, receives revocation entries; Observe, when
	// set, is told each stored entry at once (a revocation.Mirror).
	Revocations revocation.Store
	Observe     func(revocation.Entry)
	// Pepper keys the digests of link and recovery codes. Without one the
	// link and recovery flows answer ErrUnavailable (fail closed).
	Pepper Pepper
	// LinkCodeTTL is how long a link code lives; MaxLinkCodes how many
	// may be live per account.
	LinkCodeTTL  time.Duration
	MaxLinkCodes int
	// MaxDevices is how many active devices an account may have, its
	// live link codes counted (each becomes a device); at least 1.
	MaxDevices int
	// UsernameHold is how long a deleted account's or a renamed
	// account's old username stays taken.
	UsernameHold time.Duration
	// Limiter and RecoverPerAccount: the budget of recovery attempts per
	// account and client address. A nil Limiter or an unlimited rule
	// disables it.
	Limiter           ratelimit.Limiter
	RecoverPerAccount ratelimit.Rule
	// RenamePerAccount: the budget of renames per account (with Limiter).
	// Every name an account leaves stays held for UsernameHold, so without
	// it one account could hold any number of names by renaming through
	// them. An unlimited rule disables it.
	RenamePerAccount ratelimit.Rule
	// Sessions, when set, is asked before a refresh mints: a refresh token
	// issued before a device or account entry is refused and its session
	// ended, so the device stays out after the entry expires. A
	// revocation.Mirror is one.
	Sessions SessionChecker
	// StoreTimeout bounds every store call.
	StoreTimeout time.Duration
	// Observer receives metrics events. Default: none.
	Observer Observer
	// Logger receives security events (reuse, key mismatch) with ids
	// only. Default: discard.
	Logger *slog.Logger
	// Now is the clock, read on every use. Default time.Now.
	Now func() time.Time
	// Rand is the source of ids. Default crypto/rand.
	Rand io.Reader
}

// SessionChecker decides from the revocation entries whether a device
// session may still refresh (revocation.Mirror.CheckSession).
type SessionChecker interface {
	CheckSession(ctx context.Context, deviceID, accountID string, issuedAt time.Time) error
}

// Flows runs the account flows. It is safe for concurrent use.
type Flows struct {
	cfg Config
	obs Observer
	log *slog.Logger
	now func() time.Time
}

// New validates cfg and returns the flows.
func New(cfg Config) (*Flows, error) {
	switch {
	case cfg.PublicURL == "":
		return nil, errors.New("flow: PublicURL is required")
	case cfg.Store == nil, cfg.Keys == nil, cfg.Refresh == nil, cfg.Minter == nil, cfg.Usernames == nil:
		return nil, errors.New("flow: Store, Keys, Refresh, Minter and Usernames are required")
	case cfg.DPoP.Replay == nil:
		return nil, errors.New("flow: DPoP.Replay is required")
	case cfg.MaxDeviceName < 1:
		return nil, errors.New("flow: MaxDeviceName must be positive")
	case cfg.RefreshTTL <= 0 || cfg.RefreshIdle <= 0 || cfg.RefreshGrace < 0 || cfg.EntryTTL <= 0:
		return nil, errors.New("flow: RefreshTTL, RefreshIdle and EntryTTL must be positive, RefreshGrace not negative")
	case cfg.StoreTimeout <= 0:
		return nil, errors.New("flow: StoreTimeout must be positive")
	case cfg.LinkCodeTTL <= 0 || cfg.MaxLinkCodes < 1 || cfg.MaxDevices < 1 || cfg.UsernameHold < 0:
		return nil, errors.New("flow: LinkCodeTTL, MaxLinkCodes and MaxDevices must be positive, UsernameHold not negative")
	}
	f := &Flows{cfg: cfg, obs: cfg.Observer, log: cfg.Logger, now: cfg.Now}
	if f.obs == nil {
		f.obs = nopObserver{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.cfg.Rand == nil {
		f.cfg.Rand = rand.Reader
	}
	f.cfg.DPoP.Now = f.now
	return f, nil
}

type nopObserver struct{}

func (nopObserver) StoreCall(string, time.Duration)  {}
func (nopObserver) ProofRefused(string)              {}
func (nopObserver) SignedUp()                        {}
func (nopObserver) Refreshed(account.RefreshOutcome) {}

// call runs one store operation under the store timeout and reports its
// latency.
func (f *Flows) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	start := time.Now()
	err := storecall.Run(ctx, f.cfg.StoreTimeout, op, fn)
	f.obs.StoreCall(op, time.Since(start))
	return err
}

// Proof is a request's DPoP proof and what it must prove: the request's
// method and its URL as the client reached it (the public URL followed by
// the path, built from configuration, never from request headers).
type Proof struct {
	JWS    string // the one DPoP header; "" when absent or repeated
	Method string
	URL    string
}

// verifyProof checks p, bound to jkt when jkt is not empty, demanding a
// server nonce when nonces are configured.
func (f *Flows) verifyProof(ctx context.Context, p Proof, jkt string) (*dpop.Proof, error) {
	if p.JWS == "" {
		f.obs.ProofRefused(dpop.CodeInvalidProof)
		return nil, proofError(dpop.ErrMalformed, f.cfg.PublicURL)
	}
	opts := f.cfg.DPoP
	if f.cfg.Nonces != nil {
		opts.Nonces = f.cfg.Nonces
	}
	// The replay cache honours its context (memory or Redis): a deadline,
	// no goroutine.
	ctx, cancel := context.WithTimeout(ctx, f.cfg.StoreTimeout)
	defer cancel()
	proof, err := dpop.Verify(ctx, p.JWS, dpop.Request{Method: p.Method, URL: p.URL, JKT: jkt}, opts)
	if err != nil {
		if code := dpop.ErrorCode(err); code != "" {
			f.obs.ProofRefused(code)
		}
		return nil, proofError(err, f.cfg.PublicURL)
	}
	return proof, nil
}

// signingKey returns the current signing key or ErrUnavailable.
func (f *Flows) signingKey() (*keys.SecretKey, error) {
	k := f.cfg.Keys.Current()
	if k == nil {
		return nil, fail(ErrUnavailable, errors.New("no signing key loaded"))
	}
	return k, nil
}

// storeErr maps a store error that is not a verdict the flow handles: the
// store could not answer (down, timed out or broken). The flow fails closed
// and can be retried.
func storeErr(op string, err error) *Error {
	return fail(ErrUnavailable, fmt.Errorf("%s: %w", op, err))
}
