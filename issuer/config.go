package issuer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// Defaults and bounds of Config.
const (
	DefaultAccessTTL     = token.DefaultTTL // 10 minutes
	DefaultRefreshTTL    = 90 * 24 * time.Hour
	DefaultRefreshIdle   = 30 * 24 * time.Hour
	DefaultRefreshGrace  = 30 * time.Second
	DefaultStoreTimeout  = 2 * time.Second
	DefaultMaxBodyBytes  = 16 << 10
	DefaultMaxDeviceName = 64
	DefaultLeeway        = 30 * time.Second
	DefaultLinkCodeTTL   = 10 * time.Minute
	DefaultMaxLinkCodes  = 3
	DefaultMaxDevices    = 20
	DefaultUsernameHold  = 30 * 24 * time.Hour
	// DefaultTokenCache is how many verified access tokens the issuer's
	// verifier remembers (verifier.WithTokenCache): a hit skips the
	// token's signature check, never the revocation, state and proof
	// checks. About 200 bytes an entry.
	DefaultTokenCache = 1 << 16
)

// KeySource gives the current signing key and the published key set.
// *keys.Ring implements it (and is safe for concurrent use, so a rotation
// that replaces the ring's entries is picked up by the next request).
type KeySource interface {
	// Current returns the signing key; nil means none is loaded (the
	// server is not ready).
	Current() *keys.SecretKey
	// KeySet returns the published document for issuer.
	KeySet(issuer string) keys.KeySetDocument
	// Lookup returns a key of the ring and its status (the verifier's
	// per-request lookup; *keys.Ring implements it).
	Lookup(kid keys.KeyID) (keys.PublicKey, keys.Status, bool)
}

// Registry is where the issuer registers its metrics and what
// Server.MetricsHandler serves. *prometheus.Registry implements it.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// DPoPConfig configures proof checking.
type DPoPConfig struct {
	// Replay remembers proofs for their acceptance window. Required. Use
	// dpop.MemoryReplayCache for one node and redisreplay for several
	// nodes behind one name. A replay cache that fails makes the request
	// fail with 503 (fail closed).
	Replay dpop.ReplayCache
	// Nonces, when set, makes signup and refresh demand a server nonce
	// (RFC 9449 section 8): a proof without a valid one gets 400
	// use_dpop_nonce and a DPoP-Nonce header. Successful signup and refresh
	// responses carry the next nonce. Resource requests (/v1/me, /v1/logout)
	// never demand one.
	Nonces *dpop.NonceSource
	// MaxAge and MaxFuture bound a proof's iat (dpop defaults 60 s and 5 s).
	MaxAge, MaxFuture time.Duration
}

// Config configures a Server. Fields marked required have no default; the
// zero value of every other field selects the documented default.
type Config struct {
	// PublicURL is the absolute URL clients use to reach this server,
	// behind any proxy (https, or http on loopback for development), with
	// an optional path prefix. Required. The DPoP htu of each endpoint is
	// PublicURL + its path, and the access tokens' iss is PublicURL. It
	// must never be derived from request headers.
	PublicURL string
	// Audience is the aud claim of access tokens. Default PublicURL.
	Audience string
	// Store keeps accounts, devices and sessions. Required.
	Store account.Store
	// Keys gives the signing key and the key set. Required.
	Keys KeySource
	// Refresh seals refresh tokens and successor pairs. Required.
	Refresh *refresh.Codec

	// AccessTTL is the access-token lifetime, 1 to 60 minutes in whole
	// seconds. Default 10 minutes.
	AccessTTL time.Duration
	// RefreshTTL is the absolute lifetime of a device session (and of its
	// refresh tokens). Default 90 days.
	RefreshTTL time.Duration
	// RefreshIdle ends a session unused for longer. Default 30 days.
	RefreshIdle time.Duration
	// RefreshGrace is how long the previous refresh token still gets the
	// same successor (a lost response, concurrent refreshes). Default 30 s;
	// at most half of AccessTTL, so a replayed successor is never stale.
	RefreshGrace time.Duration
	// Leeway is the clock leeway for access-token times. Default 30 s.
	Leeway time.Duration

	// DPoP configures proof checking. DPoP.Replay is required.
	DPoP DPoPConfig

	// Limiter counts signups, code redemptions and recovery attempts:
	// ratelimit.Memory for one node, redislimit for a budget shared by
	// several nodes. Required unless SignupLimitsOff: New refuses a nil
	// Limiter, so that forgetting it cannot leave signups unlimited.
	Limiter ratelimit.Limiter
	// SignupLimitsOff runs without a Limiter: no signup budget, and no
	// code-redemption or recovery budget either (every rule that needs
	// the Limiter). Give it only with a nil Limiter.
	//
	// SECURITY: without budgets anyone can create accounts as fast as the
	// server answers (squatting every username, filling the store) and
	// guess link and recovery codes without a tripwire. For load tests,
	// benchmarks and servers whose budgets are enforced in front of them.
	SignupLimitsOff bool
	// SignupPerIP and SignupGlobal are the signup budgets per client
	// address (per /64 for IPv6) and for the whole service. Zero:
	// DefaultSignupPerIP and DefaultSignupGlobal; ratelimit.Disabled
	// turns one off (a limit is never left out by omission).
	SignupPerIP, SignupGlobal ratelimit.Rule
	// SignupPerNet is the signup budget of the network around a client
	// address: its IPv4 /24 or its IPv6 /56. SignupPerSite is that of its
	// IPv6 /48. Zero: twice and four times SignupPerIP (off when it is
	// off); ratelimit.Disabled turns one off. docs/ratelimits.md.
	SignupPerNet, SignupPerSite ratelimit.Rule
	// SignupReserve is what SignupGlobal keeps for networks not seen in
	// its window: once the global budget is spent, a signup is admitted
	// only from an IPv4 /24 or IPv6 /48 that no signup came from in the
	// last SignupGlobal.Per (a network stays seen one to two periods
	// after its last signup), one per network and period, within this
	// budget. Zero: a quarter of
	// SignupGlobal; ratelimit.Disabled: no reserve (a spent global budget
	// refuses everyone).
	SignupReserve ratelimit.Rule

	// CodeRedeemPerIP is the budget of link-code and recovery-code
	// redemptions per client address (per /64 for IPv6), and
	// RecoverPerAccount the budget of recovery attempts per account and
	// client address. Zero: DefaultCodeRedeemPerIP and
	// DefaultRecoverPerAccount; ratelimit.Disabled turns one off. Both
	// need Limiter.
	CodeRedeemPerIP, RecoverPerAccount ratelimit.Rule
	// RenamePerAccount is the budget of renames per account: every name an
	// account leaves stays held for UsernameHold, so without it one
	// account could hold any number of names. Zero: DefaultRenamePerAccount;
	// ratelimit.Disabled turns it off. It needs Limiter.
	RenamePerAccount ratelimit.Rule
	// CodeRedeemPerNet and CodeRedeemPerSite nest CodeRedeemPerIP as
	// SignupPerNet and SignupPerSite nest SignupPerIP (same defaults,
	// from CodeRedeemPerIP).
	CodeRedeemPerNet, CodeRedeemPerSite ratelimit.Rule

	// Pepper keys the digests of link and recovery codes (a secret of the
	// key ring). Nil: the link and recovery endpoints answer 503.
	Pepper flow.Pepper
	// LinkCodeTTL is how long a link code lives, 1 minute to 1 hour.
	// Default 10 minutes.
	LinkCodeTTL time.Duration
	// MaxLinkCodes is how many link codes an account may hold live at
	// once, 1 to 20. Default 3.
	MaxLinkCodes int
	// MaxDevices is how many active devices an account may have, its live
	// link codes counted, 1 to 1000. Default 20. Past it POST
	// /v1/link-codes answers 409 device_limit until a device is signed
	// out; an account may reach one more under a race (flow.Config).
	MaxDevices int
	// UsernameHold is how long the username of a deleted account, or the
	// old username of a renamed one, stays taken, up to 400 days. Default
	// 30 days; a negative value means no hold.
	UsernameHold time.Duration

	// CORSOrigins are the browser origins (scheme://host[:port]) whose
	// pages may call the API: preflight allows the Authorization and DPoP
	// headers and exposes DPoP-Nonce, WWW-Authenticate and Retry-After.
	// Empty: no CORS headers (same-origin pages and apps only). No
	// wildcard.
	CORSOrigins []string

	// Usernames is the username policy. Nil means
	// account.DefaultUsernamePolicy().
	Usernames *account.UsernamePolicy
	// MaxDeviceName bounds device_name in characters. Default 64.
	MaxDeviceName int

	// Logger receives the access log and errors (JSON recommended). Nil
	// discards them.
	Logger *slog.Logger
	// Registry receives the metrics and backs MetricsHandler. Nil creates
	// a private registry.
	Registry Registry
	// Now is the clock, read on every use. Default time.Now.
	Now func() time.Time
	// Rand is the source of ids and token jti. Default crypto/rand.
	Rand io.Reader

	// BearerAllowed lets /v1/me and /v1/logout accept "Authorization:
	// Bearer <token>" without a DPoP proof. Default false.
	//
	// SECURITY: with it on, a stolen access token works without the device
	// key until it expires. Signup and refresh still require proofs (the
	// device key is what a session is bound to).
	BearerAllowed bool
	// TrustedProxies are the peers whose X-Forwarded-For is believed for
	// the client address (rate limits, logs). Empty: the peer address is
	// the client address and X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// StoreTimeout bounds each store, replay-cache and rate-limiter call;
	// past it the request fails with 503. Default 2 s.
	StoreTimeout time.Duration
	// MaxBodyBytes bounds request bodies (413 beyond). Default 16 KiB.
	MaxBodyBytes int64
	// TokenCache is the size of the verified-token cache of the issuer's
	// own verifier (/v1/me and the other authenticated routes), 1 to
	// verifier.MaxTokenCacheEntries. With the identity routes on the
	// mirror (see RevocationMirror) the routes that change the account
	// have a verifier, and a cache of this size, of their own; it holds
	// only the tokens used on them. Default DefaultTokenCache;
	// NoTokenCache turns it off (every request verifies the token's
	// signature).
	TokenCache   int
	NoTokenCache bool

	// Revocations is the revocation store the issuer writes entries to:
	// logout, reuse detection and device revocation (self-service and
	// admin) add a device entry, a ban an account entry, the admin API any
	// entry. Nil: no entries are written (the issuer's own store check
	// still refuses revoked devices; offline verifiers do not learn).
	Revocations revocation.Store
	// RevocationMirror, when set, is checked by the issuer's verifier on
	// every authenticated route, and by /readyz (a stale mirror makes the
	// node not ready). Usually a revocation.Mirror over Revocations, run by
	// the caller.
	//
	// SECURITY: with Revocations set, a mirror that takes this node's
	// entries (Observe) and fails closed is trusted for device state: GET
	// /v1/me, /v1/logout and GET /v1/me/devices then read only the account
	// (docs/protocol.md, "GET /v1/me"). It must mirror Revocations, not
	// another store.
	RevocationMirror RevocationMirror

	// AdminKeysFile names the file of admin key digests (one line per key,
	// made by `hallpass admin-key new`). It is read again when it changes.
	// Empty: the admin API refuses every request.
	AdminKeysFile string
	// AuditSink, when set, receives a record of every admin call, in
	// addition to the "admin audit" log line (refused calls sampled: see
	// AuditRefusedPerMinute).
	AuditSink AuditSink
	// AuditRefusedPerMinute bounds the admin calls refused before any
	// admin key was accepted (no key, a wrong key, 429) that are recorded,
	// in the log and in AuditSink: at most this many per minute on this
	// node. Every one is counted (hallpass_admin_refused_total); the next
	// one recorded says how many were not (AuditRecord.Dropped), so junk
	// cannot push real records out of a capped sink. Calls made with a
	// valid key are always recorded. Default 60; negative: none recorded.
	AuditRefusedPerMinute int
	// AdminAuthLimit is the budget of wrong admin keys (a Bearer hpadm_
	// key that matches no line; a request without one spends nothing) per
	// client address (per /64 for IPv6) on this node. Past it, every admin
	// call from the address gets 429, its key unchecked, until the budget
	// refills. Default 10/m; ratelimit.Disabled turns it off.
	AdminAuthLimit ratelimit.Rule
	// KeyManager rotates and revokes signing keys for the admin API. Nil:
	// those admin routes answer 503.
	KeyManager KeyManager
}

// validated returns cfg with defaults applied, or the first problem.
func (cfg Config) validated() (Config, error) {
	for _, step := range []func(*Config) error{
		(*Config).checkRequired, (*Config).checkLifetimes, (*Config).checkBounds,
		(*Config).checkLimits, (*Config).checkNetwork,
	} {
		if err := step(&cfg); err != nil {
			return cfg, err
		}
	}
	cfg.fillSeams()
	return cfg, nil
}

// checkRequired checks the fields without a default.
func (cfg *Config) checkRequired() error {
	if cfg.PublicURL == "" {
		return errors.New("issuer: PublicURL is required")
	}
	pu, err := canonicalPublicURL(cfg.PublicURL)
	if err != nil {
		return err
	}
	cfg.PublicURL = pu
	if cfg.Audience == "" {
		cfg.Audience = cfg.PublicURL
	}
	switch {
	case cfg.Store == nil:
		return errors.New("issuer: Store is required")
	case cfg.Keys == nil:
		return errors.New("issuer: Keys is required")
	case cfg.Refresh == nil:
		return errors.New("issuer: Refresh codec is required")
	case cfg.DPoP.Replay == nil:
		return errors.New("issuer: DPoP.Replay is required")
	case cfg.DPoP.MaxAge < 0 || cfg.DPoP.MaxFuture < 0:
		return errors.New("issuer: DPoP windows must not be negative")
	}
	return nil
}

// checkLifetimes fills the durations' defaults and checks their bounds.
func (cfg *Config) checkLifetimes() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.AccessTTL, DefaultAccessTTL)
	def(&cfg.RefreshTTL, DefaultRefreshTTL)
	def(&cfg.RefreshIdle, DefaultRefreshIdle)
	def(&cfg.RefreshGrace, DefaultRefreshGrace)
	def(&cfg.StoreTimeout, DefaultStoreTimeout)
	def(&cfg.Leeway, DefaultLeeway)
	def(&cfg.LinkCodeTTL, DefaultLinkCodeTTL)
	def(&cfg.UsernameHold, DefaultUsernameHold)
	if cfg.UsernameHold < 0 {
		cfg.UsernameHold = 0
	}
	switch {
	case cfg.AccessTTL < token.MinTTL || cfg.AccessTTL > token.MaxTTL || cfg.AccessTTL%time.Second != 0:
		return fmt.Errorf("issuer: AccessTTL must be whole seconds from %v to %v", token.MinTTL, token.MaxTTL)
	case cfg.RefreshTTL < cfg.AccessTTL || cfg.RefreshTTL > 400*24*time.Hour:
		return errors.New("issuer: RefreshTTL must be between AccessTTL and 400 days")
	case cfg.RefreshIdle <= 0 || cfg.RefreshIdle > cfg.RefreshTTL:
		return errors.New("issuer: RefreshIdle must be positive and at most RefreshTTL")
	case cfg.RefreshGrace < 0 || cfg.RefreshGrace > cfg.AccessTTL/2:
		return errors.New("issuer: RefreshGrace must be between 0 and half of AccessTTL")
	case cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute:
		return errors.New("issuer: Leeway must be between 0 and 5 minutes")
	case cfg.StoreTimeout < 0 || cfg.StoreTimeout > time.Minute:
		return errors.New("issuer: StoreTimeout must be between 0 and 1 minute")
	case cfg.LinkCodeTTL < time.Minute || cfg.LinkCodeTTL > time.Hour:
		return errors.New("issuer: LinkCodeTTL must be between 1 minute and 1 hour")
	case cfg.UsernameHold > 400*24*time.Hour:
		return errors.New("issuer: UsernameHold must be at most 400 days")
	}
	return nil
}

// checkBounds fills and checks the sizes and the username policy.
func (cfg *Config) checkBounds() error {
	if cfg.MaxLinkCodes == 0 {
		cfg.MaxLinkCodes = DefaultMaxLinkCodes
	}
	if cfg.MaxDevices == 0 {
		cfg.MaxDevices = DefaultMaxDevices
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxDeviceName == 0 {
		cfg.MaxDeviceName = DefaultMaxDeviceName
	}
	if cfg.TokenCache == 0 {
		cfg.TokenCache = DefaultTokenCache
	}
	switch {
	case cfg.TokenCache < 1 || cfg.TokenCache > verifier.MaxTokenCacheEntries:
		return fmt.Errorf("issuer: TokenCache must be between 1 and %d", verifier.MaxTokenCacheEntries)
	case cfg.MaxLinkCodes < 1 || cfg.MaxLinkCodes > 20:
		return errors.New("issuer: MaxLinkCodes must be between 1 and 20")
	case cfg.MaxDevices < 1 || cfg.MaxDevices > 1000:
		return errors.New("issuer: MaxDevices must be between 1 and 1000")
	case cfg.MaxBodyBytes < 1024 || cfg.MaxBodyBytes > 1<<20:
		return errors.New("issuer: MaxBodyBytes must be between 1 KiB and 1 MiB")
	case cfg.MaxDeviceName < 1 || cfg.MaxDeviceName > 256:
		return errors.New("issuer: MaxDeviceName must be between 1 and 256")
	}
	if cfg.Usernames == nil {
		p := account.DefaultUsernamePolicy()
		cfg.Usernames = &p
	}
	if err := cfg.Usernames.Validate(); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	return nil
}

// checkLimits refuses a missing limiter unless limits are off by name,
// and checks every budget.
func (cfg *Config) checkLimits() error {
	switch {
	case cfg.Limiter == nil && !cfg.SignupLimitsOff:
		return errors.New("issuer: Limiter is required (ratelimit.Memory, redislimit); to run without signup limits say so with SignupLimitsOff")
	case cfg.Limiter != nil && cfg.SignupLimitsOff:
		return errors.New("issuer: SignupLimitsOff with a Limiter: give one or the other")
	}
	cfg.limitDefaults()
	if cfg.Limiter == nil {
		return nil
	}
	for _, r := range []ratelimit.Rule{cfg.SignupPerIP, cfg.SignupGlobal, cfg.CodeRedeemPerIP, cfg.RecoverPerAccount, cfg.RenamePerAccount,
		cfg.SignupPerNet, cfg.SignupPerSite, cfg.SignupReserve, cfg.CodeRedeemPerNet, cfg.CodeRedeemPerSite} {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("issuer: %w", err)
		}
	}
	return nil
}

// checkNetwork checks the CORS origins and the trusted proxies.
func (cfg *Config) checkNetwork() error {
	if err := checkOrigins(cfg.CORSOrigins); err != nil {
		return err
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return errors.New("issuer: invalid trusted proxy prefix")
		}
		if trustsEveryAddress(p) {
			// Every client would be a trusted proxy, so its own
			// X-Forwarded-For would name it: any budget by address
			// would be new on every request.
			return errors.New("issuer: TrustedProxies: a prefix of every address would let each client name its own address; list only your own proxies")
		}
	}
	return nil
}

// trustsEveryAddress reports whether p holds every IPv4 or every IPv6
// address (0.0.0.0/0, ::/0, or ::ffff:0:0/96, which the client address
// rule reads as every IPv4 address).
func trustsEveryAddress(p netip.Prefix) bool {
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	return bits <= 0
}

// fillSeams sets the defaults of the logger, registry, clock and random
// source.
func (cfg *Config) fillSeams() {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
}

// canonicalPublicURL checks an absolute http(s) URL without user info,
// query or fragment and removes a trailing slash.
func canonicalPublicURL(s string) (string, error) {
	bad := errors.New("issuer: PublicURL must be an absolute http(s) URL without user info, query or fragment")
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", bad
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", bad
	}
	out := strings.TrimRight(u.String(), "/")
	if strings.ContainsAny(out, " \t\r\n") {
		return "", bad
	}
	return out, nil
}
