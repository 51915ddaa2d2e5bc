package issuer

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
)

// PathMeDevices lists the caller's devices; PathMeDevices + "/{id}" signs
// one of them out.
const PathMeDevices = "/v1/me/devices"

// deviceView is one device as its owner (or an admin) sees it: no jkt, no
// session state.
type deviceView struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	LastUsed time.Time  `json:"last_used"`
	Revoked  *time.Time `json:"revoked,omitempty"`
	Active   bool       `json:"active"`
	Current  *bool      `json:"current,omitempty"` // only in /v1/me/devices
}

func viewDevice(d account.Device) deviceView {
	v := deviceView{
		ID: d.ID, Name: d.Name, Created: d.Created.UTC(), LastUsed: d.LastUsed.UTC(), Active: d.Active(),
	}
	if !d.Active() {
		r := d.Revoked.UTC()
		v.Revoked = &r
	}
	return v
}

type devicesResponse struct {
	Devices []deviceView `json:"devices"`
}

// handleMyDevices: GET /v1/me/devices, authenticated like /v1/me.
func (s *Server) handleMyDevices(c echo.Context) error {
	who, err := s.authenticate(c)
	if err != nil {
		return err
	}
	devs, err := s.flows.Devices(c.Request().Context(), who.Account.ID)
	if err != nil {
		return flowError(err)
	}
	out := devicesResponse{Devices: make([]deviceView, 0, len(devs))}
	for _, d := range devs {
		v := viewDevice(d)
		cur := d.ID == who.Device.ID
		v.Current = &cur
		out.Devices = append(out.Devices, v)
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// handleRevokeMyDevice: DELETE /v1/me/devices/{id}. Signs out one device
// of the caller's own account (the current one too, like a logout). A
// device of another account, or none, is 404 not_found: the answer never
// tells whether an id exists elsewhere. Revoking an already revoked device
// is 204 again.
func (s *Server) handleRevokeMyDevice(c echo.Context) error {
	who, err := s.authenticateState(c)
	if err != nil {
		return err
	}
	tainted := c.Param("id")
	if !account.ValidID(account.DevicePrefix, tainted) {
		return fail(http.StatusNotFound, CodeNotFound, errors.New("malformed device id"))
	}
	ctx := c.Request().Context()
	dev, err := s.flows.Device(ctx, tainted)
	if err != nil {
		return flowError(err)
	}
	if dev.AccountID != who.Account.ID {
		return fail(http.StatusNotFound, CodeNotFound, errors.New("device of another account"))
	}
	if err := s.flows.RevokeDevice(ctx, dev.ID, "self-service: device signed out"); err != nil {
		return flowError(err)
	}
	s.log.LogAttrs(ctx, infoLevel, "device signed out by its owner",
		attrEvent("device_revoked"), attrRequestID(requestID(c)),
		attrAccountID(who.Account.ID), attrDeviceID(dev.ID), attrBy(who.Device.ID))
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}
