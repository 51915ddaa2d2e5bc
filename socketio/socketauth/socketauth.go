package socketauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// The event a socket receives just before the server disconnects it, with
// one argument, {"reason": Reason...}.
const EventDisconnect = "hallpass:disconnect"

// Reasons sent with EventDisconnect.
const (
	ReasonTokenExpired = httpauth.CodeTokenExpired // the token reached its exp
	ReasonTokenRevoked = httpauth.CodeTokenRevoked // the token, device, account or key was revoked
	// ReasonUnavailable: the revocation checker could not vouch for the
	// token any more (a stale mirror failing closed).
	ReasonUnavailable = httpauth.CodeUnavailable
)

// Handshake refusals that are not the Authenticator's: the connect_error
// message when auth.token or auth.proof is missing or not a string.
const (
	CodeInvalidToken     = httpauth.CodeInvalidToken
	CodeInvalidDPoPProof = httpauth.CodeInvalidDPoPProof
	// CodeClosed: the Guard was closed; the socket is refused.
	CodeClosed = httpauth.CodeUnavailable
)

// Outcomes of a handshake, as told to an Observer.
const (
	OutcomeAllowed = "allowed" // accepted: the socket connects
	OutcomeRefused = "refused" // connect_error for the client's credentials (invalid, expired, revoked)
	// OutcomeError: connect_error because the server could not decide
	// (unavailable: a stale key set or revocation mirror, a closed Guard;
	// internal_error).
	OutcomeError = "error"
)

// Observer is told how every handshake ended and why the Guard dropped a
// socket (metrics). Its methods run on handshakes and re-checks: they must
// be cheap and safe for concurrent use.
type Observer interface {
	// Handshake reports one handshake's verdict: OutcomeAllowed with code
	// "", or OutcomeRefused or OutcomeError with the connect_error code.
	Handshake(outcome, code string)
	// Disconnected reports a socket the Guard disconnected, with the
	// reason it sent (ReasonTokenExpired, ReasonTokenRevoked,
	// ReasonUnavailable). Sockets that leave by themselves are not
	// reported.
	Disconnected(reason string)
}

type noObserver struct{}

func (noObserver) Handshake(string, string) {}
func (noObserver) Disconnected(string)      {}

// Defaults for Options.
const (
	DefaultRecheckEvery = time.Second
	DefaultTimeout      = 5 * time.Second
	// MaxStaleGrace bounds Options.StaleGrace: an outage longer than this
	// is not ridden out.
	MaxStaleGrace = time.Hour
	// pendingGrace is how long a socket accepted by the middleware may take
	// to connect before its session is dropped.
	pendingGrace = 30 * time.Second
)

// ErrConfig: New or Attach was given invalid arguments.
var ErrConfig = errors.New("socketauth: invalid configuration")

// Authenticator checks an access token and its DPoP proof for one request;
// *httpauth.Authenticator is one. Its errors should be *httpauth.Error,
// whose Code becomes the connect_error message (any other error answers
// internal_error).
type Authenticator interface {
	Authenticate(ctx context.Context, r httpauth.Request) (*token.Claims, error)
}

// RevocationChecker is asked, every Options.RecheckEvery, whether the token
// of each live socket may still be used; *revocation.Mirror is one. An error
// wrapping revocation.ErrRevoked disconnects the socket with
// ReasonTokenRevoked, any other error with ReasonUnavailable (fail closed).
// Each check gets a context bounded by Options.Timeout, and should honour
// it.
type RevocationChecker interface {
	CheckRevoked(ctx context.Context, kid keys.KeyID, c *token.Claims) error
}

// KeyChecker is asked, at every re-check, for the signing key of each live
// socket's token; a verifier.KeySource such as *remotekeys.KeySet is one.
// An error wrapping verifier.ErrKeyRevoked disconnects the socket with
// ReasonTokenRevoked; any other error is ignored here (the handshake
// verified the key, and the token's exp bounds the socket).
type KeyChecker interface {
	LookupKey(ctx context.Context, kid keys.KeyID) (keys.PublicKey, error)
}

// Staleness is what a revocation checker reports of its freshness, so that
// Options.StaleGrace can bound an outage; *revocation.Mirror is one.
type Staleness interface {
	// LastHeard is when the checker last heard from its store (zero
	// before it ever did), by the clock given to the Guard as Now.
	LastHeard() time.Time
	// MaxStaleness is the age of LastHeard past which the checker stops
	// vouching for tokens (revocation.ErrStale).
	MaxStaleness() time.Duration
}

// Options configure New. The zero value is useful: no re-check of live
// sockets (only their expiry), no stale grace, real clock, no log.
type Options struct {
	// Revocation, when set, is re-checked for every live socket every
	// RecheckEvery, and a revoked socket is disconnected. Use the mirror
	// given to the Authenticator's verifier (verifier.WithRevocation), so
	// that a handshake and a live socket see the same revocations.
	Revocation RevocationChecker
	// Keys, when set, is re-checked with Revocation: a socket whose
	// signing key the key set now lists as revoked is disconnected
	// (token_revoked), even without a revocation store, and one whose key
	// the set cannot vouch for any more (no longer listed, stale past its
	// bound) is disconnected as unavailable. Use the verifier's KeySource.
	Keys KeyChecker
	// RecheckEvery is the period of the revocation re-check (default
	// DefaultRecheckEvery, 1 s): the longest a revoked socket stays
	// connected after the mirror learns of the revocation. At least 10 ms.
	RecheckEvery time.Duration
	// StaleGrace, when positive, lets sockets that are already connected
	// stay through an outage of the revocation store: a re-check that
	// gets revocation.ErrStale keeps the socket while the checker's
	// LastHeard is at most its MaxStaleness + StaleGrace old (a LastHeard
	// after the Guard's now, a clock stepped back, counts as no known age:
	// not kept), and disconnects it with ReasonUnavailable after that. New handshakes
	// still fail closed (unavailable) as soon as the checker is stale, and
	// revocations the checker knew before the outage still disconnect.
	// Default 0: off, a stale checker disconnects every socket at the next
	// re-check. At most MaxStaleGrace. Revocation must implement
	// Staleness (*revocation.Mirror does).
	//
	// SECURITY: a token, device, account or key revoked during the outage
	// keeps its established sockets until the checker hears from its store
	// again or the grace ends, whichever is first (and never past the
	// token's exp). Choose it no longer than you would let a revoked
	// device keep a socket open.
	StaleGrace time.Duration
	// Timeout bounds one handshake's authentication, and each re-check
	// of one socket by Keys and by Revocation: a check past it fails
	// closed (unavailable). Default DefaultTimeout.
	Timeout time.Duration
	// Now is the clock that times a token's expiry, read on every
	// handshake and re-check (default time.Now). Use the verifier's, and
	// the revocation mirror's when StaleGrace is set.
	Now func() time.Time
	// Logger receives refusals (debug) and disconnections (info), with
	// fixed text, codes and socket ids only (default: discard).
	Logger *slog.Logger
	// Observer, when set, is told every handshake's verdict and every
	// disconnection by the Guard (default: none).
	Observer Observer
}

// Guard authenticates the handshakes of socket.io namespaces and keeps
// watch over the sockets it accepted: it disconnects each one when its token
// expires or is revoked. It is safe for concurrent use. Close stops it.
type Guard struct {
	auth    Authenticator
	path    string
	rc      RevocationChecker
	kc      KeyChecker
	stale   Staleness     // rc, when StaleGrace is set
	grace   time.Duration // Options.StaleGrace
	riding  bool          // a stale checker is being ridden out; loop goroutine only
	every   time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	obs     Observer

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the re-check loop has returned

	mu       sync.Mutex
	closed   bool
	sessions map[*socket.Socket]*session
}

// session is one accepted socket.
type session struct {
	s        *socket.Socket
	claims   *token.Claims
	kid      keys.KeyID
	accepted time.Time // by the Guard's clock
	expiry   *time.Timer
	kick     func(reason string) // emits EventDisconnect and disconnects
}

// New returns a Guard that authenticates handshakes with a, for the
// socket.io endpoint at path: the server's path with its trailing slash,
// "/socket.io/" by default in socket.io. The proof in a handshake must be
// made for method GET and the URL a's public URL + path, e.g.
// https://chat.example.com/socket.io/ (the query that engine.io adds is not
// part of it).
func New(a Authenticator, path string, opts Options) (*Guard, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: nil Authenticator", ErrConfig)
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# ") {
		return nil, fmt.Errorf("%w: path must start with / and have no query", ErrConfig)
	}
	if opts.RecheckEvery == 0 {
		opts.RecheckEvery = DefaultRecheckEvery
	}
	if opts.RecheckEvery < 10*time.Millisecond {
		return nil, fmt.Errorf("%w: RecheckEvery below 10ms", ErrConfig)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative Timeout", ErrConfig)
	}
	stale, err := opts.staleness()
	if err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Guard{
		auth: a, path: path, rc: opts.Revocation, kc: opts.Keys, every: opts.RecheckEvery,
		stale: stale, grace: opts.StaleGrace,
		timeout: opts.Timeout, now: opts.Now, log: opts.Logger, obs: opts.Observer,
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		sessions: map[*socket.Socket]*session{},
	}
	go g.loop()
	return g, nil
}

// staleness checks StaleGrace and returns the checker's Staleness when the
// grace is on.
func (o *Options) staleness() (Staleness, error) {
	switch {
	case o.StaleGrace < 0:
		return nil, fmt.Errorf("%w: negative StaleGrace", ErrConfig)
	case o.StaleGrace > MaxStaleGrace:
		return nil, fmt.Errorf("%w: StaleGrace above %v", ErrConfig, MaxStaleGrace)
	case o.StaleGrace == 0:
		return nil, nil
	}
	st, ok := o.Revocation.(Staleness)
	if !ok {
		return nil, fmt.Errorf("%w: StaleGrace needs a Revocation checker that reports its staleness (*revocation.Mirror)", ErrConfig)
	}
	return st, nil
}

// Attach makes nsp authenticate every handshake with g. Middlewares run in
// the order they were registered: call Attach before any other Use, so that
// none of yours sees an unauthenticated socket, and before registering the
// "connection" handlers: its own handler disconnects, first, a socket that
// connected without a live session (one whose token expired or was revoked
// between the middleware and the connection). Attach every namespace that
// needs it: socket.io's Server.Use covers the main namespace only.
//
// SECURITY: Attach refuses a server with socket.io's connection state
// recovery. With SkipMiddlewares a recovered socket connects without a
// handshake check; without it, socket.io still restores the session
// (its rooms, and the packets it missed, written to the client at once)
// when it creates the socket, before any middleware runs: whoever holds
// the session's pid and an offset (a device signed out while its
// transport was down, or anyone who took them from the client; they are
// not bound to the device key) read what the rooms received meanwhile,
// and only then got the connect_error.
func (g *Guard) Attach(nsp socket.Namespace) error {
	if nsp == nil {
		return fmt.Errorf("%w: nil namespace", ErrConfig)
	}
	if nsp.Server().Opts().ConnectionStateRecovery() != nil {
		return fmt.Errorf("%w: connection state recovery restores sessions before any middleware", ErrConfig)
	}
	nsp.Use(g.middleware)
	return nsp.On("connection", func(args ...any) {
		if len(args) == 0 {
			return
		}
		s, ok := args[0].(*socket.Socket)
		if !ok {
			return
		}
		g.mu.Lock()
		_, live := g.sessions[s]
		g.mu.Unlock()
		if !live {
			s.Disconnect(false)
		}
	})
}

// Claims returns the claims of the token s was accepted with, or false when
// s is not (or no longer) a socket accepted by g. The claims are a copy.
func (g *Guard) Claims(s *socket.Socket) (*token.Claims, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ss, ok := g.sessions[s]
	if !ok {
		return nil, false
	}
	c := *ss.claims
	return &c, true
}

// Len is the number of sockets g watches.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

// Close stops the re-check loop and every expiry timer, and makes g refuse
// new handshakes. It does not disconnect the live sockets: close the
// socket.io server first. Close is idempotent.
func (g *Guard) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	for _, ss := range g.sessions {
		ss.expiry.Stop()
	}
	clear(g.sessions)
	g.mu.Unlock()
	g.cancel()
	<-g.done
	return nil
}

// refuse answers the handshake with a connect_error whose message is code.
func refuse(next func(*socket.ExtendedError), code string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["code"] = code
	next(socket.NewExtendedError(code, data))
}

// middleware authenticates one handshake.
func (g *Guard) middleware(s *socket.Socket, next func(*socket.ExtendedError)) {
	var auth map[string]any
	if h := s.Handshake(); h != nil {
		auth = h.Auth
	}
	if code, data := g.admit(s, auth, kicker(s)); code != "" {
		refuse(next, code, data)
		return
	}
	next(nil)
}

// admit decides the handshake of s on its auth payload (tainted), starts
// watching s when it is accepted, and tells the Observer. It returns the
// refusal code and the connect_error data, or "".
func (g *Guard) admit(s *socket.Socket, tainted map[string]any, kick func(string)) (string, map[string]any) {
	claims, kid, code, data := g.check(tainted, string(s.Id()))
	if code == "" {
		code = g.register(s, claims, kid, kick)
	}
	if code != "" {
		g.obs.Handshake(outcomeOf(code), code)
		return code, data
	}
	g.obs.Handshake(OutcomeAllowed, "")
	return "", nil
}

// outcomeOf is the outcome of a refusal with code: an error when the
// server could not decide, a refusal of the client's credentials otherwise.
func outcomeOf(code string) string {
	if code == httpauth.CodeUnavailable || code == httpauth.CodeInternal {
		return OutcomeError
	}
	return OutcomeRefused
}

// check authenticates a handshake's auth payload (tainted). On failure it
// returns the refusal code and the connect_error data.
func (g *Guard) check(tainted map[string]any, sid string) (*token.Claims, keys.KeyID, string, map[string]any) {
	tok, ok := tainted["token"].(string)
	if !ok || tok == "" {
		g.log.Debug("socketauth: handshake refused", "code", CodeInvalidToken, "socket", sid, "err", "no auth.token")
		return nil, "", CodeInvalidToken, nil
	}
	proof, ok := tainted["proof"].(string)
	if !ok || proof == "" {
		g.log.Debug("socketauth: handshake refused", "code", CodeInvalidDPoPProof, "socket", sid, "err", "no auth.proof")
		return nil, "", CodeInvalidDPoPProof, nil
	}
	claims, kid, err := g.authenticate(tok, proof)
	if err != nil {
		var he *httpauth.Error
		if !errors.As(err, &he) {
			g.log.Error("socketauth: handshake failed", "socket", sid, "err", err.Error())
			return nil, "", httpauth.CodeInternal, nil
		}
		g.log.Debug("socketauth: handshake refused", "code", he.Code, "socket", sid)
		var data map[string]any
		if he.Nonce != "" {
			data = map[string]any{"nonce": he.Nonce}
		}
		return nil, "", he.Code, data
	}
	return claims, kid, "", nil
}

// authenticate runs the Authenticator, then the re-check's own revocation
// check so that a socket is never accepted by one and dropped a second
// later by the other.
func (g *Guard) authenticate(tok, proof string) (*token.Claims, keys.KeyID, error) {
	ctx, cancel := context.WithTimeout(g.ctx, g.timeout)
	defer cancel()
	claims, err := g.auth.Authenticate(ctx, httpauth.Request{
		Method:        "GET",
		Path:          g.path,
		Authorization: "DPoP " + tok,
		DPoP:          proof,
	})
	if err != nil {
		return nil, "", err
	}
	if claims == nil {
		return nil, "", errors.New("socketauth: Authenticator returned no claims")
	}
	// The token is authentic now: its footer is no longer unverified.
	f, err := token.UnsafeParseFooterKid(tok)
	if err != nil {
		return nil, "", fmt.Errorf("socketauth: footer of a verified token: %w", err)
	}
	if g.rc != nil {
		if err := g.rc.CheckRevoked(ctx, f.Kid, claims); err != nil {
			return nil, "", &httpauth.Error{Status: 401, Code: revocationReason(err)}
		}
	}
	return claims, f.Kid, nil
}

func revocationReason(err error) string {
	if errors.Is(err, revocation.ErrRevoked) {
		return ReasonTokenRevoked
	}
	return ReasonUnavailable
}

// register starts watching s; it returns a refusal code, or "".
func (g *Guard) register(s *socket.Socket, claims *token.Claims, kid keys.KeyID, kick func(string)) string {
	now := g.now()
	left := claims.Expiry.Sub(now)
	if left <= 0 {
		// Inside the verifier's leeway: accepted by it, but the socket
		// would be disconnected at once.
		return ReasonTokenExpired
	}
	ss := &session{s: s, claims: claims, kid: kid, accepted: now, kick: kick}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return CodeClosed
	}
	if old, ok := g.sessions[s]; ok {
		old.expiry.Stop()
	}
	g.sessions[s] = ss
	ss.expiry = time.AfterFunc(left, func() { g.disconnect(ss, ReasonTokenExpired) })
	_ = s.Once("disconnect", func(...any) { g.forget(ss) })
	return ""
}

// kicker returns the function that tells s why and disconnects it, in the
// socket's own task queue, after any packet already queued (its CONNECT).
func kicker(s *socket.Socket) func(string) {
	return func(reason string) {
		s.Enqueue(func() {
			_ = s.Emit(EventDisconnect, map[string]any{"reason": reason})
			s.Disconnect(false)
		})
	}
}

// forget drops ss if it is still the live session of its socket; it
// reports whether it did.
func (g *Guard) forget(ss *session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions[ss.s] != ss {
		return false
	}
	delete(g.sessions, ss.s)
	ss.expiry.Stop()
	return true
}

// disconnect drops ss and kicks its socket out with reason.
func (g *Guard) disconnect(ss *session, reason string) {
	if !g.forget(ss) {
		return
	}
	g.log.Info("socketauth: socket disconnected", "reason", reason, "socket", string(ss.s.Id()))
	g.obs.Disconnected(reason)
	ss.kick(reason)
}

// loop re-checks the live sockets every g.every until Close.
func (g *Guard) loop() {
	defer close(g.done)
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			g.recheck()
		}
	}
}

// recheck asks the revocation checker about every live socket, and drops
// the sessions of sockets that never connected.
func (g *Guard) recheck() {
	now := g.now()
	g.mu.Lock()
	live := make([]*session, 0, len(g.sessions))
	for _, ss := range g.sessions {
		live = append(live, ss)
	}
	g.mu.Unlock()
	for _, ss := range live {
		if !ss.s.Connected() && now.Sub(ss.accepted) > pendingGrace {
			g.forget(ss) // accepted, then never connected (or already gone)
			continue
		}
		if reason := g.recheckOne(ss, now); reason != "" {
			if g.ctx.Err() != nil {
				return
			}
			g.disconnect(ss, reason)
		}
	}
	if g.riding && now.Sub(g.stale.LastHeard()) <= g.stale.MaxStaleness() {
		g.riding = false
		g.log.Info("socketauth: revocation checker fresh again")
	}
}

// recheckOne checks the token's exp against the Guard's clock, then asks
// the key checker and the revocation checker about ss; it returns the
// reason to disconnect it, or "". The expiry timer runs on the monotonic
// clock from the handshake: a Guard clock that stepped forward since (an
// NTP correction, a resumed VM, a skewed verifier clock) passes exp first,
// and the re-check catches it.
func (g *Guard) recheckOne(ss *session, now time.Time) string {
	if !now.Before(ss.claims.Expiry) {
		return ReasonTokenExpired
	}
	if g.kc != nil {
		ctx, cancel := context.WithTimeout(g.ctx, g.timeout)
		_, err := g.kc.LookupKey(ctx, ss.kid)
		cancel()
		switch {
		case errors.Is(err, verifier.ErrKeyRevoked):
			return ReasonTokenRevoked
		case err != nil:
			// Fail closed, as a handshake would: a key the set no longer
			// lists, or a key set that cannot vouch (stale past its
			// bound, not fetched).
			return ReasonUnavailable
		}
	}
	if g.rc == nil {
		return ""
	}
	// Bounded as a handshake is: a checker that stops answering would
	// otherwise hold up the re-check of every socket (none of them
	// disconnected on a revocation) until Close.
	ctx, cancel := context.WithTimeout(g.ctx, g.timeout)
	err := g.rc.CheckRevoked(ctx, ss.kid, ss.claims)
	cancel()
	if err == nil || errors.Is(err, revocation.ErrStale) && g.rideOut(now) {
		return ""
	}
	return revocationReason(err)
}

// rideOut reports whether a socket whose re-check found the checker stale
// may stay: StaleGrace is on and the checker last heard from its store at
// most MaxStaleness + StaleGrace ago. A last contact after now (the
// Guard's clock stepped back since) gives no known age and rides out
// nothing, as the mirror counts itself stale then. It logs the start of
// each outage it rides out.
func (g *Guard) rideOut(now time.Time) bool {
	if g.stale == nil {
		return false
	}
	h := g.stale.LastHeard()
	if age := now.Sub(h); h.IsZero() || age < 0 || age > g.stale.MaxStaleness()+g.grace {
		return false
	}
	if !g.riding {
		g.riding = true
		g.log.Warn("socketauth: revocation checker stale; established sockets kept within the stale grace, new handshakes refused",
			"last_heard_ago", now.Sub(h).Round(time.Millisecond).String(), "grace_ends_in", (g.stale.MaxStaleness() + g.grace - now.Sub(h)).Round(time.Millisecond).String())
	}
	return true
}
