package issuer

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

type meResponse struct {
	AccountID         string `json:"account_id"`
	Username          string `json:"username"`
	DeviceID          string `json:"device_id"`
	RecoveryCodesLeft int    `json:"recovery_codes_left"`
}

// caller is an authenticated request's identity and account state.
type caller struct {
	claims *token.Claims
	flow.Caller
}

// handleMe: GET /v1/me.
func (s *Server) handleMe(c echo.Context) error {
	who, err := s.authenticate(c)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, meResponse{
		AccountID: who.Account.ID, Username: who.Account.Username, DeviceID: who.Device.ID,
		RecoveryCodesLeft: who.Account.RecoveryCodesLeft(),
	})
}

// handleLogout: POST /v1/logout. Ends the device's refresh session and
// marks the device revoked. The issuer's own endpoints refuse the device's
// access tokens from then on (the account-state check), and, with a
// revocation store, a device entry makes every mirror refuse them too.
func (s *Server) handleLogout(c echo.Context) error {
	who, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := s.flows.RevokeDevice(c.Request().Context(), who.Device.ID, "logout"); err != nil {
		return flowError(err)
	}
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}

// authenticate checks "Authorization: DPoP <token>" and its proof with
// verifier/httpauth, the same code every other hallpass-protected service
// runs (docs/protocol.md, "GET /v1/me"): the token offline, the revocation
// checks (the mirror, then the account: with device and account entries
// reaching the mirror, one read of the account, not deleted or banned;
// without, the full state as authenticateState), then the device binding
// (a proof with ath for this method and URL, signed by the key of cnf.jkt,
// not replayed). The account the check loaded comes back in the caller,
// so no handler reads it again.
func (s *Server) authenticate(c echo.Context) (*caller, error) {
	return s.authenticateWith(c, s.auth)
}

// authenticateState is authenticate with the full account-state check
// (flow.StateCheck: the token's device must exist, be active, belong to
// the token's account and hold its key; the account must not be banned),
// one store read of both, for the routes that change the account.
func (s *Server) authenticateState(c echo.Context) (*caller, error) {
	return s.authenticateWith(c, s.authState)
}

func (s *Server) authenticateWith(c echo.Context, a *httpauth.Authenticator) (*caller, error) {
	ctx, who := flow.WithCaller(c.Request().Context())
	claims, err := a.AuthenticateHTTP(c.Request().WithContext(ctx))
	if err != nil {
		ae := authError(err)
		if ae.code == CodeInvalidDPoPProof || ae.code == CodeUseDPoPNonce {
			s.metrics.proofFailures.WithLabelValues(ae.code).Inc()
		}
		return nil, ae
	}
	if who.Device.ID == "" || who.Account.ID == "" {
		// The state check did not run: the Authenticator was built
		// without it. Fail closed.
		return nil, errInternal(errStateCheckMissing)
	}
	return &caller{claims: claims, Caller: *who}, nil
}

// newAuthenticators builds the issuer's two httpauth.Authenticators, over
// one replay cache and the same proof windows, with no server nonce on
// resource requests. auth answers "who is this": the mirror, then, when
// device and account revocations reach it (stateFromMirror), only the
// account read (flow.AccountCheck), else the full state. authState always
// runs the full account-state check (flow.StateCheck: device active, with
// the token's key, account not banned) for the routes that change the
// account (link codes, recovery codes, rename, delete, signing out another
// device), so that a device the store has signed out can never act on the
// account, even where its entry could not be written.
func (s *Server) newAuthenticators(cfg Config) (auth, authState *httpauth.Authenticator, err error) {
	if authState, err = s.newAuthenticator(cfg, s.flows.StateCheck()); err != nil {
		return nil, nil, err
	}
	if !stateFromMirror(cfg) {
		return authState, authState, nil
	}
	if auth, err = s.newAuthenticator(cfg, s.flows.AccountCheck()); err != nil {
		return nil, nil, err
	}
	return auth, authState, nil
}

// newAuthenticator is an issuer httpauth.Authenticator: its own verifier
// (ring keys, the mirror and state, an account-state check), its replay
// cache and proof windows, no server nonce on resource requests.
func (s *Server) newAuthenticator(cfg Config, state verifier.RevocationChecker) (*httpauth.Authenticator, error) {
	v, err := newVerifier(cfg, state)
	if err != nil {
		return nil, err
	}
	return httpauth.New(httpauth.Config{
		Verifier:       v,
		PublicURL:      cfg.PublicURL,
		AllowHTTP:      true, // the issuer's own PublicURL rules apply (Config.PublicURL)
		Replay:         cfg.DPoP.Replay,
		MaxProofAge:    cfg.DPoP.MaxAge,
		MaxProofFuture: cfg.DPoP.MaxFuture,
		Now:            cfg.Now,
		AllowBearer:    cfg.BearerAllowed,
		RandRequestID:  cfg.Rand,
		// Logger: none. The issuer's error handler logs each refusal once,
		// with its own request id.
	})
}

// proofOf is the request's one DPoP proof for the route at path, as the
// flows take it: "" when the header is missing or repeated.
func (s *Server) proofOf(c echo.Context, path string) flow.Proof {
	p := flow.Proof{Method: c.Request().Method, URL: s.issuer + path}
	if vals := c.Request().Header.Values(dpop.Header); len(vals) == 1 {
		p.JWS = vals[0]
	}
	return p
}
