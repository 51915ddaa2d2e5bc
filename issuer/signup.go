package issuer

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/flow"
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

// handleSignup: POST /v1/accounts. Rate limits first (every attempt counts,
// so the endpoint cannot be used to probe for taken names faster than the
// budget), then the body, then flow.Signup.
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
	name, ok := f["username"]
	if !ok {
		return errInvalidRequest(errors.New("username missing"))
	}
	out, err := s.flows.Signup(c.Request().Context(), flow.SignupRequest{
		Username: name, DeviceName: f["device_name"], Proof: s.proofOf(c, PathAccounts),
	})
	if err != nil {
		return flowError(err)
	}
	return s.newDeviceAnswer(c, out)
}
