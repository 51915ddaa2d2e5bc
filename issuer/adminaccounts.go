package issuer

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
)

// MaxAdminAccountDevices bounds the devices GET /v1/admin/accounts/{id}
// lists: nothing bounds an account's devices (each link-code redemption
// adds one, signed out ones stay), and an answer listing tens of thousands
// was more than the console reads, leaving the account's page, and its ban
// button, an internal error. GET /v1/admin/accounts/{id}/devices lists
// them all.
const MaxAdminAccountDevices = 500

// adminAccountView is an account as support sees it: its devices (at most
// MaxAdminAccountDevices, DevicesTotal in all) and how many recovery
// codes and live link codes it holds, never the codes.
type adminAccountView struct {
	accountView
	Devices           []deviceView `json:"devices"`
	DevicesTotal      int          `json:"devices_total"`
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
	out := adminAccountView{accountView: viewAccount(acc), DevicesTotal: len(devs),
		RecoveryCodesLeft: acc.RecoveryCodesLeft(), LiveLinkCodes: links}
	devs = firstDevices(devs, MaxAdminAccountDevices)
	out.Devices = make([]deviceView, 0, len(devs))
	for _, d := range devs {
		out.Devices = append(out.Devices, viewDevice(d))
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// firstDevices returns at most n of devs: the active ones first, then the
// most recently used, then the most recently created (devs is reordered).
func firstDevices(devs []account.Device, n int) []account.Device {
	slices.SortStableFunc(devs, func(a, b account.Device) int {
		if a.Active() != b.Active() {
			if a.Active() {
				return -1
			}
			return 1
		}
		if c := b.LastUsed.Compare(a.LastUsed); c != 0 {
			return c
		}
		return b.Created.Compare(a.Created)
	})
	return devs[:min(n, len(devs))]
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
