package issuer

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/flow"
)

// Routes of the account life cycle beyond signup (docs/api.md, "Account
// life cycle").
const (
	PathLinkCodes     = "/v1/me/link-codes"
	PathLink          = "/v1/link"
	PathRecoveryCodes = "/v1/me/recovery-codes"
	PathRecover       = "/v1/recover"
)

type linkCodeResponse struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

// handleCreateLinkCode: POST /v1/me/link-codes, authenticated.
func (s *Server) handleCreateLinkCode(c echo.Context) error {
	who, err := s.authenticateState(c)
	if err != nil {
		return err
	}
	lc, err := s.flows.CreateLinkCode(c.Request().Context(), who.Account.ID, who.Device.ID)
	if err != nil {
		return flowError(err)
	}
	s.auditSelf(c, who, "link_code_created")
	noStore(c)
	return c.JSON(http.StatusCreated, linkCodeResponse{Code: lc.Code, ExpiresAt: lc.Expires.UTC()})
}

// handleLink: POST /v1/link {"link_code","device_name"} with a proof of the
// new device's key: the per-address budget, then flow.Link.
func (s *Server) handleLink(c echo.Context) error {
	if err := s.checkRedeemLimit(c); err != nil {
		return err
	}
	f, err := s.jsonBody(c, nil, "link_code", "device_name")
	if err != nil {
		return err
	}
	code, ok := f["link_code"]
	if !ok {
		return errInvalidRequest(errors.New("link_code missing"))
	}
	out, err := s.flows.Link(c.Request().Context(), flow.LinkRequest{Code: code, DeviceName: f["device_name"], Proof: s.proofOf(c, PathLink)})
	if err != nil {
		return flowError(err)
	}
	return s.newDeviceAnswer(c, out)
}

type recoveryCodesResponse struct {
	Codes []string `json:"codes"`
}

// handleCreateRecoveryCodes: POST /v1/me/recovery-codes, authenticated.
func (s *Server) handleCreateRecoveryCodes(c echo.Context) error {
	who, err := s.authenticateState(c)
	if err != nil {
		return err
	}
	codes, err := s.flows.CreateRecoveryCodes(c.Request().Context(), who.Account.ID)
	if err != nil {
		return flowError(err)
	}
	s.auditSelf(c, who, "recovery_codes_created")
	noStore(c)
	return c.JSON(http.StatusCreated, recoveryCodesResponse{Codes: codes})
}

// handleRecover: POST /v1/recover {"username","recovery_code",
// "device_name","sign_out_other_devices"} with a proof of the new
// device's key: the per-address budget, then flow.Recover (which adds the
// per-account budget). sign_out_other_devices defaults to true.
func (s *Server) handleRecover(c echo.Context) error {
	if err := s.checkRedeemLimit(c); err != nil {
		return err
	}
	f, err := s.jsonBody(c, []string{"sign_out_other_devices"}, "username", "recovery_code", "device_name", "sign_out_other_devices")
	if err != nil {
		return err
	}
	name, okName := f["username"]
	code, okCode := f["recovery_code"]
	if !okName || !okCode {
		return errInvalidRequest(errors.New("username or recovery_code missing"))
	}
	out, err := s.flows.Recover(c.Request().Context(), flow.RecoverRequest{
		Username: name, RecoveryCode: code, DeviceName: f["device_name"],
		SignOutOthers: f["sign_out_other_devices"] != "false",
		Proof:         s.proofOf(c, PathRecover), ClientKey: clientKey(c.RealIP()),
	})
	if err != nil {
		return flowError(err)
	}
	s.log.LogAttrs(c.Request().Context(), infoLevel, "account recovered on a new device",
		attrEvent("account_recovered"), attrRequestID(requestID(c)), attrAccountID(out.AccountID), attrDeviceID(out.DeviceID))
	return s.newDeviceAnswer(c, out)
}

// newDeviceAnswer is the 201 of signup, link and recover.
func (s *Server) newDeviceAnswer(c echo.Context, out flow.Tokens) error {
	s.setNonce(c)
	noStore(c)
	return c.JSON(http.StatusCreated, signupResponse{
		AccountID: out.AccountID, Username: out.Username, DeviceID: out.DeviceID,
		AccessToken: out.AccessToken, TokenType: "DPoP", ExpiresIn: s.expiresIn(out.AccessExpiry),
		RefreshToken: out.RefreshToken,
	})
}

// handleDeleteMe: DELETE /v1/me, authenticated: the account is deleted
// (every token refused everywhere, every session ended, the username held).
func (s *Server) handleDeleteMe(c echo.Context) error {
	who, err := s.authenticateState(c)
	if err != nil {
		return err
	}
	if err := s.flows.DeleteAccount(c.Request().Context(), who.Account.ID, "deleted by its owner"); err != nil {
		return flowError(err)
	}
	s.auditSelf(c, who, "account_deleted")
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}

// handleRenameMe: PATCH /v1/me {"username"}, authenticated.
func (s *Server) handleRenameMe(c echo.Context) error {
	who, err := s.authenticateState(c)
	if err != nil {
		return err
	}
	f, err := s.jsonBody(c, nil, "username")
	if err != nil {
		return err
	}
	name, ok := f["username"]
	if !ok {
		return errInvalidRequest(errors.New("username missing"))
	}
	display, err := s.flows.Rename(c.Request().Context(), who.Account.ID, name)
	if err != nil {
		return flowError(err)
	}
	s.auditSelf(c, who, "account_renamed")
	noStore(c)
	return c.JSON(http.StatusOK, meResponse{AccountID: who.Account.ID, Username: display, DeviceID: who.Device.ID, RecoveryCodesLeft: who.Account.RecoveryCodesLeft()})
}

// jsonBody reads a strict JSON object body of string members (and the
// boolean members in bools).
func (s *Server) jsonBody(c echo.Context, bools []string, allowed ...string) (map[string]string, error) {
	if mediaType(c) != echo.MIMEApplicationJSON {
		return nil, fail(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, nil)
	}
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	f, err := decodeObject(body, true, allowed, bools)
	if err != nil {
		return nil, errInvalidRequest(err)
	}
	return f, nil
}

// auditSelf logs a self-service change of an account (ids only).
func (s *Server) auditSelf(c echo.Context, who *caller, event string) {
	s.log.LogAttrs(c.Request().Context(), infoLevel, "account changed by its owner",
		attrEvent(event), attrRequestID(requestID(c)), attrAccountID(who.Account.ID), attrBy(who.Device.ID))
}
