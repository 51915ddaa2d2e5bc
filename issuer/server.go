package issuer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/docs"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/internal/storecall"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// Route paths. The DPoP htu of a route is Config.PublicURL + its path.
const (
	PathAccounts = "/v1/accounts"
	PathToken    = "/v1/token"
	PathMe       = "/v1/me"
	PathLogout   = "/v1/logout"
	PathKeys     = "/.well-known/hallpass/keys"
	PathOpenAPI  = "/openapi.yaml"
	PathHealthz  = "/healthz"
	PathReadyz   = "/readyz"
	// PathMetrics is where MetricsHandler is served; not on Handler.
	PathMetrics = "/metrics"
)

// NonceHeader is the response header that carries a DPoP server nonce.
const NonceHeader = dpop.NonceHeader

// Server is the hallpass issuer. It is safe for concurrent use; its
// dependencies (store, key source, replay cache, limiter) are owned by the
// caller, who closes them after the HTTP server has shut down.
type Server struct {
	cfg          Config
	store        account.Store
	keys         KeySource
	flows        *flow.Flows
	auth         *httpauth.Authenticator // identity: the mirror, then the account (stateFromMirror) or the full state
	authState    *httpauth.Authenticator // the full account state from the store, for routes that change the account
	nonces       *dpop.NonceSource
	log          *slog.Logger
	metrics      *metrics
	now          func() time.Time
	rand         io.Reader
	storeTimeout time.Duration
	maxBody      int64
	issuer       string
	ridFallback  atomic.Uint64
	echo         *echo.Echo
	admin        *echo.Echo
	revStore     revocation.Store
	mirror       RevocationMirror
	adminKeys    *adminKeys
	limitMetrics *limitMetrics // limit.go
	adminGuard   *adminGuard   // audit.go
	metricsH     http.Handler  // MetricsHandler
}

// New validates cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.validated()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	lm, err := newLimitMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	ag, err := newAdminGuard(cfg)
	if err != nil {
		return nil, err
	}
	minter, err := token.NewMinter(token.Config{
		Issuer: cfg.PublicURL, Audience: cfg.Audience, TTL: cfg.AccessTTL, Now: cfg.Now, Rand: cfg.Rand,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:          cfg,
		store:        cfg.Store,
		keys:         cfg.Keys,
		nonces:       cfg.DPoP.Nonces,
		log:          cfg.Logger,
		metrics:      m,
		now:          cfg.Now,
		rand:         cfg.Rand,
		storeTimeout: cfg.StoreTimeout,
		maxBody:      cfg.MaxBodyBytes,
		issuer:       cfg.PublicURL,
		revStore:     cfg.Revocations,
		mirror:       cfg.RevocationMirror,
		limitMetrics: lm,
		adminGuard:   ag,
		metricsH:     promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}),
	}
	if s.flows, err = s.newFlows(cfg, minter); err != nil {
		return nil, err
	}
	if s.auth, s.authState, err = s.newAuthenticators(cfg); err != nil {
		return nil, err
	}
	if cfg.AdminKeysFile != "" {
		s.adminKeys = &adminKeys{path: cfg.AdminKeysFile}
	}
	s.echo = s.buildEcho()
	s.admin = s.buildAdminEcho()
	return s, nil
}

// Handler returns the HTTP handler of every public route. It does not
// serve /metrics: see MetricsHandler.
func (s *Server) Handler() http.Handler { return s.echo }

// MetricsHandler serves Config.Registry in the Prometheus text format, for
// GET /metrics on a listener only monitoring reaches: `hallpass serve`
// puts it on the admin listener, or on --metrics-listen. No credential is
// asked for.
//
// SECURITY: the metrics show signup volume, refresh-token reuse, rate-limit
// refusals and proof failures; never serve them on the public listener.
func (s *Server) MetricsHandler() http.Handler { return s.metricsH }

// PublicURL returns the canonical public URL (no trailing slash).
func (s *Server) PublicURL() string { return s.issuer }

// newEcho is an Echo instance with the server's error handler, client
// address rule and the given middleware, and no banner or log output.
func (s *Server) newEcho(middleware ...echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = ipExtractor(s.cfg.TrustedProxies)
	e.Use(middleware...)
	return e
}

func (s *Server) buildEcho() *echo.Echo {
	e := s.newEcho(s.observe, s.limitBody)
	if cors := s.cors(); cors != nil {
		e.Use(cors)
	}

	e.POST(PathAccounts, s.handleSignup)
	e.POST(PathToken, s.handleToken)
	e.GET(PathMe, s.handleMe)
	e.PATCH(PathMe, s.handleRenameMe)
	e.DELETE(PathMe, s.handleDeleteMe)
	e.POST(PathLinkCodes, s.handleCreateLinkCode)
	e.POST(PathLink, s.handleLink)
	e.POST(PathRecoveryCodes, s.handleCreateRecoveryCodes)
	e.POST(PathRecover, s.handleRecover)
	e.POST(PathLogout, s.handleLogout)
	e.GET(PathMeDevices, s.handleMyDevices)
	e.DELETE(PathMeDevices+"/:id", s.handleRevokeMyDevice)
	e.GET(PathKeys, s.handleKeys)
	e.GET(PathOpenAPI, s.handleOpenAPI)
	e.GET(PathHealthz, s.handleHealthz)
	e.GET(PathReadyz, s.handleReadyz)
	return e
}

// Routes returns the method and path of every registered route, for tests
// and documentation checks.
func (s *Server) Routes() [][2]string { return routesOf(s.echo) }

// routesOf returns the method and path of every route of e.
func routesOf(e *echo.Echo) [][2]string {
	var out [][2]string
	for _, r := range e.Routes() {
		out = append(out, [2]string{r.Method, r.Path})
	}
	return out
}

func (s *Server) handleKeys(c echo.Context) error {
	if s.keys.Current() == nil {
		return errUnavailable(errors.New("no signing key loaded"))
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.JSON(http.StatusOK, s.keys.KeySet(s.issuer))
}

func (s *Server) handleOpenAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/yaml", docs.OpenAPI)
}

type status struct {
	Status string `json:"status"`
}

func (s *Server) handleHealthz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, status{"ok"})
}

// handleReadyz: ready when a signing key is loaded, the store answers a
// ping within the store timeout, and the revocation mirror (when
// configured) is not stale.
func (s *Server) handleReadyz(c echo.Context) error {
	if s.keys.Current() == nil {
		return errUnavailable(errors.New("readyz: no signing key loaded"))
	}
	ctx, cancel := s.storeCtx(c.Request().Context())
	defer cancel()
	start := time.Now()
	err := s.store.Ping(ctx)
	s.metrics.observeStore("ping", start)
	if err != nil {
		return errUnavailable(err)
	}
	if s.mirror != nil {
		// A stale mirror refuses every token (fail closed) or accepts
		// revoked ones (fail open): either way this node should not get
		// traffic until it has caught up.
		if err := s.mirror.Ready(); err != nil {
			return errUnavailable(fmt.Errorf("readyz: revocation mirror: %w", err))
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, status{"ready"})
}

// storeErr maps a store error that is not a verdict the caller handles to
// a response: the store could not answer (down, timed out, or broken) ->
// 503. Nothing reached the client about the cause.
// An error the store does not classify is treated the same way: the
// request fails closed and can be retried.
func storeErr(err error) *apiError { return errUnavailable(err) }

// storeCall runs one store operation of an admin or probe handler under
// the store timeout (internal/storecall) and records its latency.
func (s *Server) storeCall(c echo.Context, op string, fn func(ctx context.Context) error) error {
	start := time.Now()
	err := storecall.Run(c.Request().Context(), s.storeTimeout, op, fn)
	s.metrics.observeStore(op, start)
	return err
}

// newFlows builds the transport-free account flows from the validated
// configuration.
func (s *Server) newFlows(cfg Config, minter *token.Minter) (*flow.Flows, error) {
	fc := flow.Config{
		PublicURL: cfg.PublicURL, Store: cfg.Store, Keys: cfg.Keys, Refresh: cfg.Refresh, Minter: minter,
		Usernames: cfg.Usernames, MaxDeviceName: cfg.MaxDeviceName,
		RefreshTTL: cfg.RefreshTTL, RefreshIdle: cfg.RefreshIdle, RefreshGrace: cfg.RefreshGrace,
		EntryTTL:     s.entryTTL(),
		DPoP:         dpop.Options{Replay: cfg.DPoP.Replay, MaxAge: cfg.DPoP.MaxAge, MaxFuture: cfg.DPoP.MaxFuture},
		Revocations:  cfg.Revocations,
		StoreTimeout: cfg.StoreTimeout,
		Pepper:       cfg.Pepper,
		LinkCodeTTL:  cfg.LinkCodeTTL, MaxLinkCodes: cfg.MaxLinkCodes, MaxDevices: cfg.MaxDevices, UsernameHold: cfg.UsernameHold,
		Limiter: cfg.Limiter, RecoverPerAccount: cfg.RecoverPerAccount, RenamePerAccount: cfg.RenamePerAccount,
		Observer: flowMetrics{s.metrics},
		Logger:   cfg.Logger,
		Now:      cfg.Now,
		Rand:     cfg.Rand,
	}
	if cfg.DPoP.Nonces != nil {
		fc.Nonces = cfg.DPoP.Nonces
	}
	if o, ok := cfg.RevocationMirror.(entryObserver); ok {
		fc.Observe = o.Observe
	}
	if sc, ok := cfg.RevocationMirror.(flow.SessionChecker); ok {
		fc.Sessions = sc
	}
	return flow.New(fc)
}

// setNonce sends the next DPoP server nonce when nonces are demanded.
func (s *Server) setNonce(c echo.Context) {
	if s.nonces != nil {
		c.Response().Header().Set(NonceHeader, s.nonces.Issue())
	}
}

// noStore marks a response that carries credentials or identities.
func noStore(c echo.Context) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// expiresIn is the whole seconds from now until exp, at least 0.
func (s *Server) expiresIn(exp time.Time) int64 {
	d := exp.Sub(s.now())
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}
