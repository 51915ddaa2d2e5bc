package issuer

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/token"
)

type signupResponse struct {
	AccountID    string `json:"account_id"`
	Username     string `json:"username"`
	DeviceID     string `json:"device_id"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// handleSignup: POST /v1/accounts.
//
// Order: rate limits (every attempt counts, so the endpoint cannot be used
// to probe for taken names faster than the budget) -> body -> username ->
// DPoP proof -> ids and tokens -> one atomic CreateAccount. Nothing is
// stored before the last step, and the tokens are only returned after it
// succeeded.
//
// Counters: a new session starts at Counter 0 and the first refresh token
// carries ctr 0; each refresh presents ctr n (== Session.Counter) and
// receives ctr n+1.
func (s *Server) handleSignup(c echo.Context) error {
	if err := s.checkSignupLimits(c); err != nil {
		return err
	}
	if mediaType(c) != echo.MIMEApplicationJSON {
		return fail(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, nil)
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	f, err := decodeStringObject(body, true, "username", "device_name")
	if err != nil {
		return errInvalidRequest(err)
	}
	rawName, ok := f["username"]
	if !ok {
		return errInvalidRequest(errors.New("username missing"))
	}
	name, err := s.cfg.Usernames.Check(rawName)
	if err != nil {
		return fail(http.StatusBadRequest, CodeUsernameInvalid, err)
	}
	deviceName := f["device_name"]
	if !validDeviceName(deviceName, s.cfg.MaxDeviceName) {
		return errInvalidRequest(errors.New("device_name invalid"))
	}

	proof, err := s.verifyProof(c, PathAccounts, "", "", true, false)
	if err != nil {
		return err
	}

	accID, err := account.NewID(account.AccountPrefix, s.rand)
	if err != nil {
		return errInternal(err)
	}
	devID, err := account.NewID(account.DevicePrefix, s.rand)
	if err != nil {
		return errInternal(err)
	}
	now := s.now().UTC()
	expires := now.Add(s.cfg.RefreshTTL)
	key := s.keys.Current()
	if key == nil {
		return errUnavailable(errors.New("no signing key loaded"))
	}
	access, claims, err := s.minter.Mint(key, token.Subject{Account: accID, Device: devID, JKT: proof.JKT})
	if err != nil {
		return errInternal(err)
	}
	rt, err := s.codec.Seal(refresh.Claims{DeviceID: devID, Counter: 0, IssuedAt: now, ExpiresAt: expires})
	if err != nil {
		return errInternal(err)
	}

	acc := account.Account{ID: accID, Username: name.Display, UsernameKey: name.Key, Created: now}
	dev := account.Device{ID: devID, AccountID: accID, Name: deviceName, JKT: proof.JKT, Created: now, LastUsed: now}
	sess := account.Session{DeviceID: devID, AccountID: accID, JKT: proof.JKT, Counter: 0, Created: now, LastUsed: now, Expires: expires}
	if err := s.storeCall(c, "create_account", func(ctx context.Context) error {
		return s.store.CreateAccount(ctx, acc, dev, sess)
	}); err != nil {
		if errors.Is(err, account.ErrUsernameTaken) {
			return fail(http.StatusConflict, CodeUsernameTaken, nil)
		}
		return storeErr(err)
	}
	s.metrics.signups.Inc()
	s.setNonce(c)
	noStore(c)
	return c.JSON(http.StatusCreated, signupResponse{
		AccountID:    accID,
		Username:     name.Display,
		DeviceID:     devID,
		AccessToken:  access,
		TokenType:    "DPoP",
		ExpiresIn:    s.expiresIn(claims.Expiry),
		RefreshToken: rt,
	})
}
