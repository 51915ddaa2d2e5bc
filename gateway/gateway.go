package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// The identity headers set on forwarded requests and on forward-auth
// answers.
const (
	HeaderAccount = "X-Hallpass-Account"
	HeaderDevice  = "X-Hallpass-Device"
)

// DefaultVerifyPath is where the forward-auth endpoint answers.
const DefaultVerifyPath = "/v1/verify"

// Authenticator verifies a request's access token and DPoP proof;
// *httpauth.Authenticator is one. Its errors are answered with
// httpauth.WriteProblem.
type Authenticator interface {
	Authenticate(ctx context.Context, req httpauth.Request) (*token.Claims, error)
}

// NonceIssuer is an optional interface of an Authenticator that demands
// DPoP server nonces (RFC 9449 section 8), as *httpauth.Authenticator
// does with httpauth.Config.Nonces: NextNonce returns a fresh nonce, or
// "" when it demands none. The gateway then sends one as DPoP-Nonce with
// every verified answer (proxied, upgraded, or the forward-auth 200), so
// that a client's next proof carries it without a use_dpop_nonce round
// trip; a refused proof's 401 carries one already (httpauth.Error.Nonce).
type NonceIssuer interface {
	NextNonce() string
}

// Config configures a Gateway. PublicURL is required; the zero value of
// every other field selects the documented default.
type Config struct {
	// PublicURL is the URL clients use to reach the gateway, as given to
	// the Authenticator (httpauth.Config.PublicURL). Required.
	PublicURL string
	// Upstream is where verified requests are forwarded (scheme, host and
	// an optional base path). Nil: no reverse proxy; only the verify
	// endpoint answers, every other path is 404.
	Upstream *url.URL
	// Transport carries requests to the upstream. Default:
	// NewTransport(TransportOptions{}), which keeps up to
	// DefaultUpstreamMaxIdle connections for reuse.
	Transport http.RoundTripper
	// TrustedProxies are the peer addresses whose forwarded headers are
	// believed. Empty: the verify endpoint refuses every request (403,
	// logged at debug level only: anyone can cause it), and the proxy
	// keeps none of a client's X-Forwarded-* headers.
	TrustedProxies []netip.Prefix
	// Origins are the scheme://host[:port] a forward-auth request may name
	// in X-Forwarded-Proto and X-Forwarded-Host. Default: the origin of
	// PublicURL. The first is used when the proxy sends neither.
	Origins []string
	// VerifyPath is the forward-auth endpoint's path. Default
	// DefaultVerifyPath.
	VerifyPath string
	// StripAuthorization removes the Authorization header from forwarded
	// requests. By default it is kept (the DPoP header is always removed).
	StripAuthorization bool
	// Revocation, when set, is asked every RecheckEvery about the token
	// of each proxied upgraded connection (WebSocket), which is closed
	// when it answers an error (fail closed). Use the mirror given to the
	// Authenticator's verifier (verifier.WithRevocation), so that the
	// handshake and the live connection see the same revocations. Nil:
	// upgraded connections are closed at their token's expiry only.
	Revocation RevocationChecker
	// Keys, when set, is asked with Revocation for the signing key of each
	// proxied upgraded connection's token: a connection whose key the set
	// now lists as revoked is closed (token_revoked), even without a
	// revocation store (a key revoked offline with `hallpass keys revoke`
	// writes no entry), and one whose key the set can no longer vouch for
	// (no longer listed, stale past its bound) is closed as unavailable.
	// Use the verifier's KeySource. Nil: keys are checked at the
	// handshake only.
	Keys KeyChecker
	// RecheckEvery is the period of that re-check: the longest a revoked
	// connection stays open after the checker learns of the revocation.
	// Every re-check also compares the token's exp with Now, so a clock
	// that stepped forward closes the connection within this period.
	// Default DefaultRecheckEvery (1 s); at least 10 ms.
	RecheckEvery time.Duration
	// Now is the clock that times a token's expiry; use the verifier's.
	// Default time.Now.
	Now func() time.Time
	// Logger receives refusals (debug), closed upgraded connections (info)
	// and upstream failures (warn), fixed text and error values only.
	// Default: discard.
	Logger *slog.Logger
	// Observer, when set, is told the outcome of every request and the
	// time each authentication took (metrics). Default: none.
	Observer Observer
}

// Gateway is an http.Handler: the verify endpoint at Config.VerifyPath, and
// the reverse proxy on every other path.
type Gateway struct {
	auth       Authenticator
	trusted    []netip.Prefix
	origins    []origin
	verifyPath string
	publicHost string // host[:port] of PublicURL, lower case, default port removed
	proxy      *httputil.ReverseProxy
	stripAuthz bool
	rc         RevocationChecker
	kc         KeyChecker
	every      time.Duration
	now        func() time.Time
	log        *slog.Logger
	obs        Observer
	nonce      func() string // NonceIssuer.NextNonce; nil without nonces
}

type origin struct{ scheme, host string } // host lower case, default port removed

func (o origin) String() string { return o.scheme + "://" + o.host }

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("gateway: invalid configuration")

// New validates cfg and returns a Gateway that verifies requests with auth.
func New(auth Authenticator, cfg Config) (*Gateway, error) {
	if auth == nil {
		return nil, fmt.Errorf("%w: nil Authenticator", ErrConfig)
	}
	pub, err := parseOrigin(cfg.PublicURL, true)
	if err != nil {
		return nil, fmt.Errorf("%w: PublicURL: %w", ErrConfig, err)
	}
	g := &Gateway{
		auth:       auth,
		trusted:    cfg.TrustedProxies,
		verifyPath: cfg.VerifyPath,
		publicHost: pub.host,
		stripAuthz: cfg.StripAuthorization,
		rc:         cfg.Revocation,
		kc:         cfg.Keys,
		every:      cfg.RecheckEvery,
		now:        cfg.Now,
		log:        cfg.Logger,
		obs:        cfg.Observer,
	}
	if err := g.applyDefaults(); err != nil {
		return nil, err
	}
	if n, ok := auth.(NonceIssuer); ok && n.NextNonce() != "" {
		g.nonce = n.NextNonce
	}
	if err := g.setOrigins(pub, cfg.Origins); err != nil {
		return nil, err
	}
	if cfg.Upstream != nil {
		if err := g.setUpstream(cfg.Upstream, cfg.Transport); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// applyDefaults fills in the defaults of the fields New copied from Config and validates them.
func (g *Gateway) applyDefaults() error {
	if g.obs == nil {
		g.obs = noObserver{}
	}
	if g.every == 0 {
		g.every = DefaultRecheckEvery
	}
	if g.every < 10*time.Millisecond {
		return fmt.Errorf("%w: RecheckEvery must be at least 10ms", ErrConfig)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.verifyPath == "" {
		g.verifyPath = DefaultVerifyPath
	}
	if !strings.HasPrefix(g.verifyPath, "/") {
		return fmt.Errorf("%w: VerifyPath must start with /", ErrConfig)
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g.checkTrusted()
}

// checkTrusted validates the trusted proxy prefixes and reads an
// IPv4-mapped one (::ffff:10.0.0.0/104) as the IPv4 prefix it spells,
// which is how peers are matched (unmapped): kept mapped, it matched no
// peer. A prefix of every address is refused: every client would be a
// trusted proxy, free to name any X-Forwarded-For, -Host and -Proto (the
// forward-auth request's origin among them).
func (g *Gateway) checkTrusted() error {
	out := make([]netip.Prefix, 0, len(g.trusted))
	for _, p := range g.trusted {
		if !p.IsValid() {
			return fmt.Errorf("%w: invalid trusted proxy prefix", ErrConfig)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.Bits() == 0 {
			return fmt.Errorf("%w: TrustedProxies: a prefix of every address would make every client a trusted proxy; list only your own proxies", ErrConfig)
		}
		out = append(out, p)
	}
	g.trusted = out
	return nil
}

// setOrigins parses the allowed forward-auth origins (none given: pub only).
func (g *Gateway) setOrigins(pub origin, origins []string) error {
	if len(origins) == 0 {
		g.origins = []origin{pub}
	}
	for _, s := range origins {
		o, err := parseOrigin(s, false)
		if err != nil {
			return fmt.Errorf("%w: Origins: %w", ErrConfig, err)
		}
		g.origins = append(g.origins, o)
	}
	return nil
}

// setUpstream validates u and builds the reverse proxy to it over tr
// (nil: NewTransport's defaults).
func (g *Gateway) setUpstream(u *url.URL, tr http.RoundTripper) error {
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: Upstream must be an http or https URL without user info, query or fragment", ErrConfig)
	}
	if tr == nil {
		t, err := NewTransport(TransportOptions{})
		if err != nil {
			return err
		}
		tr = t
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite(u),
		ModifyResponse: g.modifyResponse,
		Transport:      tr,
		ErrorHandler:   g.upstreamError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BufferPool:     newBufferPool(),
	}
	return nil
}

// parseOrigin reads scheme://host[:port] (with a path when withPath).
func parseOrigin(s string, withPath bool) (origin, error) {
	u, err := url.Parse(s) // its error quotes the input: not returned
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || (!withPath && u.Path != "" && u.Path != "/") {
		return origin{}, errors.New("want http(s)://host[:port]")
	}
	return origin{scheme: u.Scheme, host: canonicalHost(u.Scheme, u.Host)}, nil
}

// canonicalHost lower-cases host and drops the scheme's default port.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	if h, p, err := net.SplitHostPort(host); err == nil &&
		((scheme == "https" && p == "443") || (scheme == "http" && p == "80")) {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

// ServeHTTP removes the client's identity headers, then answers the verify
// endpoint or verifies and forwards the request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	StripIdentityHeaders(r.Header)
	if r.URL.Path == g.verifyPath {
		g.serveVerify(w, r)
		return
	}
	if g.proxy == nil {
		g.refuse(w, http.StatusNotFound, codeNotFound)
		return
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	req, ok := credentials(r.Header)
	if !ok {
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused: repeated Authorization or DPoP header")
		g.refuseAuth(w, &httpauth.Error{Status: http.StatusUnauthorized, Code: httpauth.CodeInvalidToken})
		return
	}
	req.Method, req.Path = r.Method, path
	c, err := g.authenticate(r.Context(), req)
	if err != nil {
		g.refuseAuth(w, err) // the Authenticator logged the cause
		return
	}
	if isUpgrade(r) {
		g.serveUpgrade(w, r, c, req.Authorization)
		return
	}
	g.forward(r.Context(), w, r, c)
}

// credentials reads the one Authorization and at most one DPoP header.
func credentials(h http.Header) (httpauth.Request, bool) {
	authz, proofs := h.Values("Authorization"), h.Values(dpop.Header)
	if len(authz) > 1 || len(proofs) > 1 {
		return httpauth.Request{}, false
	}
	var req httpauth.Request
	if len(authz) == 1 {
		req.Authorization = authz[0]
	}
	if len(proofs) == 1 {
		req.DPoP = proofs[0]
	}
	return req, true
}

// rewrite builds the forwarded request.
func (g *Gateway) rewrite(upstream *url.URL) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		pr.SetURL(upstream)
		// Rewrite starts without X-Forwarded-For, -Host and -Proto, but
		// with every other X-Forwarded-* and every '_' spelling: drop
		// them unless a proxy we trust sent them. Keep the client chain,
		// and the scheme and host the client used, only from such a proxy.
		trusted := g.trustedPeer(pr.In.RemoteAddr)
		stripClientForwarded(pr.Out.Header, trusted)
		pr.SetXForwarded()
		if !trusted {
			// SetXForwarded copied the Host header, which the client
			// chose; the host it reached is the public URL's.
			pr.Out.Header.Set("X-Forwarded-Host", g.publicHost)
		} else {
			if xff := pr.In.Header.Values("X-Forwarded-For"); len(xff) > 0 {
				pr.Out.Header.Set("X-Forwarded-For", strings.Join(xff, ", ")+", "+pr.Out.Header.Get("X-Forwarded-For"))
			}
			for _, k := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
				if v, p := single(pr.In.Header, k); p == found {
					pr.Out.Header.Set(k, v)
				}
			}
		}
		h := pr.Out.Header
		StripIdentityHeaders(h)
		h.Del(dpop.Header)
		if g.stripAuthz {
			h.Del("Authorization")
		}
		if c, ok := httpauth.ClaimsFromContext(pr.In.Context()); ok {
			h.Set(HeaderAccount, c.Subject)
			h.Set(HeaderDevice, c.Device)
		}
	}
}

// modifyResponse gives a verified request's answer the next DPoP nonce
// (NonceIssuer), in place of any the upstream sent: the proofs this
// origin checks are the gateway's, and so are its nonces.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	g.setNonce(resp.Header)
	return nil
}

// setNonce sets DPoP-Nonce to the next nonce when nonces are demanded.
func (g *Gateway) setNonce(h http.Header) {
	if g.nonce != nil {
		h.Set(dpop.NonceHeader, g.nonce())
	}
}

func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream failed", slog.String("error", err.Error()))
	markUpstreamFailed(r)
	writeProblem(w, http.StatusBadGateway, codeBadGateway)
}

func (g *Gateway) trustedPeer(remoteAddr string) bool {
	if len(g.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range g.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// StripIdentityHeaders removes every header whose name, compared
// case-insensitively with '_' read as '-', starts with "X-Hallpass-".
func StripIdentityHeaders(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// stripClientForwarded removes the X-Forwarded-* and X-Real-IP headers of
// a request (names compared as in StripIdentityHeaders): all of them from
// a peer that is not a trusted proxy, and from any peer those spelled with
// '_', which CGI, PHP, WSGI and Rack read as the headers the gateway sets
// (X_Forwarded_For as X-Forwarded-For).
func stripClientForwarded(h http.Header, trusted bool) {
	for k := range h {
		if isForwardedHeader(k) && (!trusted || strings.IndexByte(k, '_') >= 0) {
			delete(h, k)
		}
	}
}

// isForwardedHeader reports whether name says where a request came from:
// X-Forwarded-*, or X-Real-IP (the client address by nginx's convention).
func isForwardedHeader(name string) bool {
	const realIP = "x-real-ip"
	return hasPrefixFold(name, "x-forwarded-") || (len(name) == len(realIP) && hasPrefixFold(name, realIP))
}

func isIdentityHeader(name string) bool { return hasPrefixFold(name, "x-hallpass-") }

// hasPrefixFold reports whether name starts with prefix (lower case, with
// '-'), compared ASCII case-insensitively with '_' read as '-'.
func hasPrefixFold(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
