package httpauth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// NonceSource issues and checks DPoP server nonces (RFC 9449 section 8);
// *dpop.NonceSource is one.
type NonceSource interface {
	dpop.NonceChecker
	Issue() string
}

// Config configures an Authenticator. Verifier and PublicURL are required;
// the zero value of every other field selects the documented default.
type Config struct {
	// Verifier verifies the access tokens: trusted keys, issuer, audience,
	// clock, leeway and (optionally) revocation. Required. To skip the
	// token's signature check when a device presents the same token again,
	// build it with verifier.WithTokenCache (the proof is still verified on
	// every request).
	Verifier *verifier.Verifier
	// PublicURL is scheme://host[:port][/base] as clients reach the
	// service, behind any proxy. A proof's htu must equal PublicURL
	// followed by the request path. https, or http for a loopback host
	// (or any host with AllowHTTP). Required.
	PublicURL string
	// AllowHTTP allows an http PublicURL on a non-loopback host.
	AllowHTTP bool
	// Replay remembers accepted proofs. Default: a dpop.MemoryReplayCache
	// of this Authenticator (one process only; use dpop/redisreplay for a
	// cluster).
	Replay dpop.ReplayCache
	// Nonces, when set, makes every proof carry a server nonce; failures
	// answer use_dpop_nonce with a fresh one, and Middleware sends the next
	// nonce on every authenticated response.
	Nonces NonceSource
	// MaxProofAge is how far a proof's iat may lie in the past. Default
	// dpop.DefaultMaxAge (60 s).
	MaxProofAge time.Duration
	// MaxProofFuture is how far a proof's iat may lie in the future.
	// Default dpop.DefaultMaxFuture (5 s).
	MaxProofFuture time.Duration
	// Now is the clock for proofs, read on every request. Default time.Now.
	// Use the clock given to the Verifier (verifier.WithClock).
	Now func() time.Time
	// Logger receives refusals (debug) and server-side failures (error),
	// with fixed text only. Default: discard.
	Logger *slog.Logger
	// AllowBearer accepts "Authorization: Bearer <token>" without a proof.
	//
	// SECURITY: it disables the device binding: anyone who sees a token can
	// use it until it expires. Off by default.
	AllowBearer bool
	// RandRequestID is the source of request ids for 5xx answers. Default
	// crypto/rand.
	RandRequestID io.Reader
}

// Authenticator authenticates requests. It is safe for concurrent use.
type Authenticator struct {
	v           *verifier.Verifier
	base        string // PublicURL without a trailing slash
	opts        dpop.Options
	nonces      NonceSource
	log         *slog.Logger
	allowBearer bool
	rand        io.Reader
}

// Request is what Authenticate needs to know about a request. Every field
// comes from the transport as the server received it.
type Request struct {
	// Method is the request method (GET, POST, ...).
	Method string
	// Path is the request path as the server received it (escaped form,
	// e.g. r.URL.EscapedPath()); it is appended to Config.PublicURL. A
	// query or fragment is ignored. A path that does not start with '/'
	// (net/http passes "*" on for "GET * HTTP/1.1") or has a "." or ".."
	// segment is refused (ErrPath, 400 invalid_request).
	Path string
	// URL, instead of Path, is the full request URL, for a caller that
	// serves several public origins (a forward-auth endpoint).
	//
	// SECURITY: build it from configuration, never from Host or
	// X-Forwarded-* headers that reach the server from clients.
	URL string
	// Authorization is the value of the one Authorization header ("" when
	// absent).
	Authorization string
	// DPoP is the value of the one DPoP header ("" when absent).
	DPoP string
}

// New validates cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Verifier == nil {
		return nil, fmt.Errorf("%w: Verifier is required", ErrConfig)
	}
	base, err := checkPublicURL(cfg.PublicURL, cfg.AllowHTTP)
	if err != nil {
		return nil, err
	}
	if cfg.MaxProofAge < 0 || cfg.MaxProofFuture < 0 {
		return nil, fmt.Errorf("%w: negative proof window", ErrConfig)
	}
	a := &Authenticator{
		v:           cfg.Verifier,
		base:        base,
		nonces:      cfg.Nonces,
		log:         cfg.Logger,
		allowBearer: cfg.AllowBearer,
		rand:        cfg.RandRequestID,
		opts: dpop.Options{
			Replay:    cfg.Replay,
			MaxAge:    cfg.MaxProofAge,
			MaxFuture: cfg.MaxProofFuture,
			Now:       cfg.Now,
		},
	}
	if cfg.Nonces != nil {
		a.opts.Nonces = cfg.Nonces
	}
	if a.opts.Replay == nil {
		rc, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		a.opts.Replay = rc
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a, nil
}

// checkPublicURL returns the public URL without a trailing slash.
func checkPublicURL(s string, allowHTTP bool) (string, error) {
	bad := fmt.Errorf("%w: PublicURL must be an absolute https URL (http on loopback, or with AllowHTTP) without user info, query or fragment", ErrConfig)
	u, err := url.Parse(s) // its error quotes the input: not returned
	if s == "" || err != nil || u.Host == "" || u.Opaque != "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#") {
		return "", bad
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		if !allowHTTP && h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", bad
		}
	default:
		return "", bad
	}
	base := strings.TrimRight(s, "/")
	// dpop must accept the URLs built from it: make one proof for it with a
	// throwaway key.
	if _, err := dpop.NewProof(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), "GET", base+"/", "", ""); err != nil {
		return "", bad
	}
	return base, nil
}

// Authenticate verifies the access token and DPoP proof of a request and
// returns the token's claims. Errors are *Error; answer them with
// WriteProblem (or, off HTTP, with their Code).
func (a *Authenticator) Authenticate(ctx context.Context, req Request) (*token.Claims, error) {
	if req.Authorization == "" {
		return nil, a.fail(ctx, &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, noCredentials: true, cause: ErrNoToken})
	}
	scheme, tok, ok := strings.Cut(req.Authorization, " ")
	if !ok || tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return nil, a.fail(ctx, &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, cause: ErrAuthorization})
	}
	switch {
	case strings.EqualFold(scheme, "DPoP"):
	case strings.EqualFold(scheme, "Bearer") && a.allowBearer:
		c, err := a.v.Verify(ctx, tok)
		if err != nil {
			return nil, a.fail(ctx, a.tokenError(err))
		}
		return c, nil
	case strings.EqualFold(scheme, "Bearer"):
		return nil, a.fail(ctx, &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, cause: ErrBearer})
	default:
		return nil, a.fail(ctx, &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, cause: ErrAuthorization})
	}

	target, err := a.requestURL(req)
	if errors.Is(err, ErrPath) {
		return nil, a.fail(ctx, &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: detailPath, cause: err})
	}
	if err != nil {
		return nil, a.fail(ctx, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, cause: err})
	}
	b := &binding{a: a, proof: req.DPoP, req: dpop.Request{Method: req.Method, URL: target, AccessToken: tok}}
	c, err := a.v.VerifyBound(ctx, tok, b)
	if err != nil {
		return nil, a.fail(ctx, a.tokenError(err))
	}
	return c, nil
}

// requestURL is the URL the proof's htu must match.
func (a *Authenticator) requestURL(req Request) (string, error) {
	switch {
	case req.URL != "" && req.Path != "":
		return "", fmt.Errorf("%w: Request has both Path and URL", ErrConfig)
	case req.URL != "":
		return req.URL, nil
	case req.Path == "":
		return "", fmt.Errorf("%w: Request has neither Path nor URL", ErrConfig)
	case !strings.HasPrefix(req.Path, "/"):
		// The client's: net/http hands "GET * HTTP/1.1" over as "*".
		return "", fmt.Errorf("%w: not an absolute path", ErrPath)
	case hasDotSegment(req.Path):
		// Normalising PublicURL + Path would let ".." climb out of
		// PublicURL's base path, to a URL another service answers.
		return "", fmt.Errorf("%w: dot segment", ErrPath)
	}
	return a.base + req.Path, nil
}

// hasDotSegment reports whether the path p (escaped form), the query and
// fragment left out, has a "." or ".." segment, its dots plain or
// percent-encoded, its separators '/' or what some servers decode or read
// as one before they resolve dots (%2F, '\', %5C).
func hasDotSegment(p string) bool {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if !strings.Contains(p, ".") && !strings.Contains(p, "%") {
		return false
	}
	p = dotSegmentReplacer.Replace(p)
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

var dotSegmentReplacer = strings.NewReplacer("%2E", ".", "%2e", ".", "%2F", "/", "%2f", "/", "%5C", "/", "%5c", "/", "\\", "/")

// binding checks the proof as the token's device binding.
type binding struct {
	a     *Authenticator
	proof string
	req   dpop.Request
}

func (b *binding) CheckBinding(ctx context.Context, c *token.Claims) error {
	if b.proof == "" {
		return ErrNoProof
	}
	b.req.JKT = c.Confirmation.JKT
	_, err := dpop.Verify(ctx, b.proof, b.req, b.a.opts)
	return err
}

// AuthenticateHTTP is Authenticate for an *http.Request: the path from
// r.URL, and exactly one Authorization header and at most one DPoP header.
func (a *Authenticator) AuthenticateHTTP(r *http.Request) (*token.Claims, error) {
	ctx := r.Context()
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return nil, a.fail(ctx, &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, cause: ErrAuthorization})
	}
	proofs := r.Header.Values(dpop.Header)
	if len(proofs) > 1 {
		return nil, a.fail(ctx, &Error{Status: http.StatusUnauthorized, Code: CodeInvalidDPoPProof, Detail: detailNoProof, cause: ErrNoProof})
	}
	req := Request{Method: r.Method, Path: r.URL.EscapedPath()}
	if len(authz) == 1 {
		req.Authorization = authz[0]
	}
	if len(proofs) == 1 {
		req.DPoP = proofs[0]
	}
	if req.Path == "" {
		req.Path = "/"
	}
	return a.Authenticate(ctx, req)
}

// Middleware authenticates each request before next, which finds the
// claims with ClaimsFromContext. A refused request is answered with
// WriteProblem and never reaches next.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.AuthenticateHTTP(r)
		if err != nil {
			WriteProblem(w, err)
			return
		}
		if a.nonces != nil {
			w.Header().Set(dpop.NonceHeader, a.nonces.Issue())
		}
		next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
	})
}

// NextNonce returns a fresh server nonce, or "" without Config.Nonces. A
// transport other than HTTP can send it to clients with a success.
func (a *Authenticator) NextNonce() string {
	if a.nonces == nil {
		return ""
	}
	return a.nonces.Issue()
}

type ctxKey struct{}

// ContextWithClaims returns ctx carrying c, as Middleware does.
func ContextWithClaims(ctx context.Context, c *token.Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// ClaimsFromContext returns the claims Middleware verified for this
// request.
func ClaimsFromContext(ctx context.Context) (*token.Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*token.Claims)
	return c, ok && c != nil
}
