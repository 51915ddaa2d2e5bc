package issuer

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/token"
)

type meResponse struct {
	AccountID string `json:"account_id"`
	Username  string `json:"username"`
	DeviceID  string `json:"device_id"`
}

// caller is an authenticated request's identity.
type caller struct {
	claims *token.Claims
	dev    account.Device
	acc    account.Account
}

// handleMe: GET /v1/me.
func (s *Server) handleMe(c echo.Context) error {
	who, err := s.authenticate(c, PathMe)
	if err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, meResponse{AccountID: who.acc.ID, Username: who.acc.Username, DeviceID: who.dev.ID})
}

// handleLogout: POST /v1/logout. Ends the device's refresh session and
// marks the device revoked. The issuer's own endpoints refuse the device's
// access tokens from then on (authenticate checks the device in the store),
// and, with a revocation store, a device entry makes every mirror refuse
// them too.
func (s *Server) handleLogout(c echo.Context) error {
	who, err := s.authenticate(c, PathLogout)
	if err != nil {
		return err
	}
	if err := s.revokeDevice(c, who.dev, "logout"); err != nil {
		return err
	}
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}

// authenticate checks "Authorization: DPoP <token>" and its proof, in the
// order of docs/protocol.md (Verification order): the token offline (size, kid, signature, claims,
// iss, aud, times), then the device binding (proof with ath, signed by the
// key of cnf.jkt, for this method and URL, not replayed), then the store:
// the device must still be active and the account not banned.
//
// The store check is what makes logout and reuse detection effective on
// the issuer's own endpoints before the revocation denylist exists; it
// costs two store reads per request.
func (s *Server) authenticate(c echo.Context, path string) (*caller, error) {
	authz := c.Request().Header.Values(echo.HeaderAuthorization)
	if len(authz) == 0 {
		e := fail(http.StatusUnauthorized, CodeInvalidToken, errors.New("no credentials"))
		e.noAuthSent = true
		return nil, e
	}
	if len(authz) != 1 {
		return nil, fail(http.StatusUnauthorized, CodeInvalidToken, errors.New("several Authorization headers"))
	}
	scheme, tok, ok := strings.Cut(authz[0], " ")
	if !ok || tok == "" || strings.ContainsAny(tok, " \t") {
		return nil, fail(http.StatusUnauthorized, CodeInvalidToken, errors.New("malformed Authorization header"))
	}
	bearer := false
	switch {
	case strings.EqualFold(scheme, "DPoP"):
	case strings.EqualFold(scheme, "Bearer") && s.cfg.BearerAllowed:
		bearer = true
	default:
		return nil, fail(http.StatusUnauthorized, CodeInvalidToken, errors.New("unsupported authorization scheme"))
	}

	var claims *token.Claims
	var err error
	if bearer {
		claims, err = s.verifier.Verify(c.Request().Context(), tok)
	} else {
		claims, err = s.verifier.VerifyBound(c.Request().Context(), tok, bindingFunc(func(_ context.Context, cl *token.Claims) error {
			_, err := s.verifyProof(c, path, tok, cl.Confirmation.JKT, false, true)
			return err
		}))
	}
	if err != nil {
		return nil, tokenError(err)
	}

	var dev account.Device
	var acc account.Account
	if err := s.storeCall(c, "get_device", func(ctx context.Context) error {
		var err error
		dev, err = s.store.GetDevice(ctx, claims.Device)
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return nil, fail(http.StatusUnauthorized, CodeTokenRevoked, err)
		}
		return nil, storeErr(err)
	}
	if !dev.Active() || dev.AccountID != claims.Subject || dev.JKT != claims.Confirmation.JKT {
		return nil, fail(http.StatusUnauthorized, CodeTokenRevoked, errors.New("device revoked or not matching the token"))
	}
	if err := s.storeCall(c, "get_account", func(ctx context.Context) error {
		var err error
		acc, err = s.store.GetAccount(ctx, claims.Subject)
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return nil, fail(http.StatusUnauthorized, CodeTokenRevoked, err)
		}
		return nil, storeErr(err)
	}
	if acc.Banned {
		return nil, fail(http.StatusUnauthorized, CodeTokenRevoked, errors.New("account banned"))
	}
	return &caller{claims: claims, dev: dev, acc: acc}, nil
}

// verifyProof checks the request's one DPoP header for the route at path.
// accessToken (ath) and jkt (binding) may be empty. demandNonce asks for a
// server nonce when the server is configured with one. resource selects
// the error style: 401 with WWW-Authenticate for resource requests, 400
// for signup and token requests (RFC 9449 sections 5 and 7.1).
func (s *Server) verifyProof(c echo.Context, path, accessToken, jkt string, demandNonce, resource bool) (*dpop.Proof, error) {
	vals := c.Request().Header.Values(dpop.Header)
	if len(vals) != 1 || vals[0] == "" {
		return nil, s.proofError(dpop.ErrMalformed, resource)
	}
	opts := s.dpopOpts
	if demandNonce && s.nonces != nil {
		opts.Nonces = s.nonces
	}
	ctx, cancel := s.storeCtx(c.Request().Context())
	defer cancel()
	p, err := dpop.Verify(ctx, vals[0], dpop.Request{
		Method:      c.Request().Method,
		URL:         s.issuer + path,
		AccessToken: accessToken,
		JKT:         jkt,
	}, opts)
	if err != nil {
		return nil, s.proofError(err, resource)
	}
	return p, nil
}

func (s *Server) proofError(err error, resource bool) *apiError {
	code := dpop.ErrorCode(err)
	if code == "" {
		if errors.Is(err, dpop.ErrReplayCheck) {
			return errUnavailable(err)
		}
		return errInternal(err)
	}
	s.metrics.proofFailures.WithLabelValues(code).Inc()
	status := http.StatusBadRequest
	if resource {
		status = http.StatusUnauthorized
	}
	e := fail(status, code, err)
	if code == dpop.CodeUseNonce {
		e.nonce = true
	}
	return e
}
