package issuer

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
)

// adminAccountView is an account as support sees it: its devices and how
// many recovery codes and live link codes it holds, never the codes.
type adminAccountView struct {
	accountView
	Devices           []deviceView `json:"devices"`
	RecoveryCodesLeft int          `json:"recovery_codes_left"`
	LiveLinkCodes     int          `json:"live_link_codes"`
}

// handleAdminAccount: GET /v1/admin/accounts/{id}.
func (s *Server) handleAdminAccount(c echo.Context) error {
	acc, err := s.getAccount(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	devs, err := s.flows.Devices(ctx, acc.ID)
	if err != nil {
		return flowError(err)
	}
	links, err := s.flows.LiveLinkCodes(ctx, acc.ID)
	if err != nil {
		return flowError(err)
	}
	out := adminAccountView{accountView: viewAccount(acc), Devices: make([]deviceView, 0, len(devs)),
		RecoveryCodesLeft: acc.RecoveryCodesLeft(), LiveLinkCodes: links}
	for _, d := range devs {
		out.Devices = append(out.Devices, viewDevice(d))
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// handleAdminDeleteAccount: DELETE /v1/admin/accounts/{id}: as DELETE
// /v1/me, audited.
func (s *Server) handleAdminDeleteAccount(c echo.Context) error {
	acc, err := s.getAccount(c)
	if err != nil {
		return err
	}
	if err := s.flows.DeleteAccount(c.Request().Context(), acc.ID, adminReasonAccountDeleted); err != nil {
		return flowError(err)
	}
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}

type supportCodeResponse struct {
	Code string `json:"code"`
}

// handleAdminSupportCode: POST /v1/admin/accounts/{id}/recovery-codes: one
// more recovery code for an owner who proved themselves out of band. The
// code is in the answer only, never in the audit record or the log.
func (s *Server) handleAdminSupportCode(c echo.Context) error {
	acc, err := s.getAccount(c)
	if err != nil {
		return err
	}
	if acc.Banned {
		return fail(http.StatusConflict, CodeInvalidRequest, account.ErrBanned)
	}
	code, err := s.flows.SupportCode(c.Request().Context(), acc.ID)
	if err != nil {
		return flowError(err)
	}
	noStore(c)
	return c.JSON(http.StatusCreated, supportCodeResponse{Code: code})
}
