package verifier

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// Defaults and bounds of the options.
const (
	DefaultLeeway       = 30 * time.Second
	MaxLeeway           = 5 * time.Minute
	DefaultMaxTokenSize = 4096
	// MinTokenSize and MaxTokenSize bound WithMaxTokenSize. A hallpass token
	// is about 600 bytes.
	MinTokenSize = 256
	MaxTokenSize = 64 << 10
)

// RevocationChecker decides whether an authentic, unexpired token has been
// revoked (for example through a denylist of jti values). It returns nil
// when the token may be used. Any error rejects the token (fail closed) as
// ErrRevoked, whether the token is revoked or the check could not be made;
// the error stays in the chain for logging.
type RevocationChecker interface {
	CheckRevoked(ctx context.Context, kid keys.KeyID, c *token.Claims) error
}

// BindingChecker proves that the presenter holds the key the token is bound
// to (c.Confirmation.JKT), for example by checking a DPoP proof of the
// current request. It is supplied per request to VerifyBound and runs last.
// Any error rejects the token as ErrBinding.
type BindingChecker interface {
	CheckBinding(ctx context.Context, c *token.Claims) error
}

// Verifier verifies hallpass access tokens offline. It is safe for
// concurrent use (if its KeySource and RevocationChecker are).
type Verifier struct {
	keys       KeySource
	issuer     string
	audience   string
	now        func() time.Time
	leeway     time.Duration
	maxSize    int
	revocation RevocationChecker
	cache      *tokenCache // nil unless WithTokenCache
}

// Option configures a Verifier.
type Option func(*Verifier) error

// WithClock sets the clock, read on every verification. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrConfig)
		}
		v.now = now
		return nil
	}
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat, from 0 to
// MaxLeeway. Default DefaultLeeway (30 s).
func WithLeeway(d time.Duration) Option {
	return func(v *Verifier) error {
		if d < 0 || d > MaxLeeway {
			return fmt.Errorf("%w: leeway must be from 0 to %v", ErrConfig, MaxLeeway)
		}
		v.leeway = d
		return nil
	}
}

// WithMaxTokenSize sets the largest token accepted, in bytes, from
// MinTokenSize to MaxTokenSize. Default DefaultMaxTokenSize (4096).
func WithMaxTokenSize(n int) Option {
	return func(v *Verifier) error {
		if n < MinTokenSize || n > MaxTokenSize {
			return fmt.Errorf("%w: max token size must be from %d to %d", ErrConfig, MinTokenSize, MaxTokenSize)
		}
		v.maxSize = n
		return nil
	}
}

// WithRevocation adds a revocation check, run after every other rule but
// the device binding.
func WithRevocation(rc RevocationChecker) Option {
	return func(v *Verifier) error {
		if rc == nil {
			return fmt.Errorf("%w: nil revocation checker", ErrConfig)
		}
		v.revocation = rc
		return nil
	}
}

// New returns a Verifier that trusts the keys of ks and accepts only tokens
// whose iss is exactly issuer and whose aud is exactly audience.
func New(ks KeySource, issuer, audience string, opts ...Option) (*Verifier, error) {
	if ks == nil {
		return nil, fmt.Errorf("%w: nil key source", ErrConfig)
	}
	if s, ok := ks.(*StaticKeySet); ok && s == nil {
		return nil, fmt.Errorf("%w: nil key source", ErrConfig)
	}
	if issuer == "" || audience == "" {
		return nil, fmt.Errorf("%w: issuer and audience are required", ErrConfig)
	}
	v := &Verifier{
		keys:     ks,
		issuer:   issuer,
		audience: audience,
		now:      time.Now,
		leeway:   DefaultLeeway,
		maxSize:  DefaultMaxTokenSize,
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrConfig)
		}
		if err := opt(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Verify verifies a token without device binding and returns its claims.
//
// SECURITY: a hallpass access token is bound to a device key (cnf.jkt). A
// resource server that accepts requests with it must use VerifyBound with a
// proof of possession; Verify alone treats the token as a bearer token.
func (v *Verifier) Verify(ctx context.Context, tainted string) (*token.Claims, error) {
	return v.verify(ctx, tainted, nil)
}

// VerifyBound verifies a token like Verify, then runs b (required) on its
// claims.
func (v *Verifier) VerifyBound(ctx context.Context, tainted string, b BindingChecker) (*token.Claims, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no binding checker", ErrBinding)
	}
	return v.verify(ctx, tainted, b)
}

// verify runs the checks in the order of the protocol; the first failure
// rejects the token. The cheap structural checks come before the key
// lookup, the signature before anything reads the payload.
func (v *Verifier) verify(ctx context.Context, tainted string, b BindingChecker) (*token.Claims, error) {
	// 1. Size, before anything else touches the input.
	if len(tainted) > v.maxSize {
		return nil, ErrTooLarge
	}
	var h [sha256.Size]byte
	if v.cache != nil {
		h = sha256.Sum256([]byte(tainted))
		if e := v.cache.get(&h); e != nil {
			return v.verifyCached(ctx, &h, e, b)
		}
	}
	// 2. Header.
	if !strings.HasPrefix(tainted, token.HeaderV4Public) {
		return nil, fmt.Errorf("%w: not a v4.public token", ErrMalformed)
	}
	// 3. Footer, unverified and bounded: only to pick the key.
	f, err := token.UnsafeParseFooterKid(tainted)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// 4. Key lookup.
	key, err := v.lookupKey(ctx, f.Kid)
	if err != nil {
		return nil, err
	}
	// 5. Signature. Every failure is the same opaque error.
	payload, _, err := token.VerifyV4Public(key, tainted, nil)
	if err != nil {
		return nil, ErrInvalidSignature
	}
	// 6-7. One JSON object without duplicate names, decoded once into typed
	// claims with every required claim present and well typed.
	c, err := token.ParseClaims(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	now := v.now()
	if err := v.checkTime(c, now); err != nil {
		return nil, err
	}
	if err := v.checkIssuerAudience(c); err != nil {
		return nil, err
	}
	// The token is authentic, current and meant for us: remember it. The
	// entry holds its own copy of the claims.
	if v.cache != nil {
		v.cache.put(&h, &cacheEntry{key: key, claims: *c}, now, v.leeway)
	}
	if err := v.checkRevocationBinding(ctx, f.Kid, c, b); err != nil {
		return nil, err
	}
	return c, nil
}

// verifyCached finishes the verification of a token whose byte-identical
// string verified before (e): steps 1 to 3 and 5 to 7 gave the same result
// then and cannot give another now, so only the steps that depend on time
// or on mutable state run again, in the same order and with the same
// errors as in verify.
func (v *Verifier) verifyCached(ctx context.Context, h *[sha256.Size]byte, e *cacheEntry, b BindingChecker) (*token.Claims, error) {
	// 4. The key must still be trusted now, and be the key that verified.
	kid := e.key.ID()
	key, err := v.lookupKey(ctx, kid)
	if err != nil {
		v.cache.remove(h)
		return nil, err
	}
	if !key.Equal(e.key) {
		v.cache.remove(h)
		return nil, ErrInvalidSignature
	}
	c := new(token.Claims)
	*c = e.claims // the caller's copy
	// 8-9. The clock is read again; iss and aud cannot have changed, but
	// checking them costs two comparisons and keeps one code path.
	if err := v.checkTime(c, v.now()); err != nil {
		if err == ErrExpired {
			v.cache.remove(h)
		}
		return nil, err
	}
	if err := v.checkIssuerAudience(c); err != nil {
		return nil, err
	}
	if err := v.checkRevocationBinding(ctx, kid, c, b); err != nil {
		return nil, err
	}
	return c, nil
}

// lookupKey is step 4: the key of kid, as the KeySource trusts it now.
func (v *Verifier) lookupKey(ctx context.Context, kid keys.KeyID) (keys.PublicKey, error) {
	key, err := v.keys.LookupKey(ctx, kid)
	if err != nil {
		return keys.PublicKey{}, lookupError(err)
	}
	if key.IsZero() || key.ID() != kid {
		return keys.PublicKey{}, fmt.Errorf("%w: returned a key with another id", ErrKeySource)
	}
	return key, nil
}

// checkTime is step 8, against a clock read now. exp is exclusive (RFC
// 7519).
func (v *Verifier) checkTime(c *token.Claims, now time.Time) error {
	switch {
	case !now.Before(c.Expiry.Add(v.leeway)):
		return ErrExpired
	case now.Add(v.leeway).Before(c.NotBefore):
		return ErrNotYetValid
	case c.IssuedAt.After(now.Add(v.leeway)):
		return ErrIssuedInFuture
	}
	return nil
}

// checkIssuerAudience is step 9.
func (v *Verifier) checkIssuerAudience(c *token.Claims) error {
	if c.Issuer != v.issuer {
		return ErrIssuer
	}
	if c.Audience != v.audience {
		return ErrAudience
	}
	return nil
}

// checkRevocationBinding is steps 10 (revocation) and 11 (device binding).
func (v *Verifier) checkRevocationBinding(ctx context.Context, kid keys.KeyID, c *token.Claims, b BindingChecker) error {
	if v.revocation != nil {
		if err := v.revocation.CheckRevoked(ctx, kid, c); err != nil {
			return &causeError{ErrRevoked, err}
		}
	}
	if b != nil {
		if err := b.CheckBinding(ctx, c); err != nil {
			return &causeError{ErrBinding, err}
		}
	}
	return nil
}

func lookupError(err error) error {
	switch {
	case err == ErrUnknownKey || err == ErrKeyRevoked:
		return err
	case errors.Is(err, ErrKeyRevoked):
		return &causeError{ErrKeyRevoked, err}
	case errors.Is(err, ErrUnknownKey):
		return &causeError{ErrUnknownKey, err}
	}
	return &causeError{ErrKeySource, err}
}
