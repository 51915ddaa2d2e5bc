package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/revocation"
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
	who, err := s.authenticate(c, PathMeDevices)
	if err != nil {
		return err
	}
	var devs []account.Device
	if err := s.storeCall(c, "list_devices", func(ctx context.Context) error {
		var err error
		devs, err = s.store.ListDevices(ctx, who.acc.ID)
		return err
	}); err != nil {
		return storeErr(err)
	}
	out := devicesResponse{Devices: make([]deviceView, 0, len(devs))}
	for _, d := range devs {
		if d.AccountID != who.acc.ID {
			continue // defence in depth: never show another account's device
		}
		v := viewDevice(d)
		cur := d.ID == who.dev.ID
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
	tainted := c.Param("id")
	who, err := s.authenticate(c, PathMeDevices+"/"+url.PathEscape(tainted))
	if err != nil {
		return err
	}
	if !account.ValidID(account.DevicePrefix, tainted) {
		return fail(http.StatusNotFound, CodeNotFound, errors.New("malformed device id"))
	}
	id := tainted
	var dev account.Device
	if err := s.storeCall(c, "get_device", func(ctx context.Context) error {
		var err error
		dev, err = s.store.GetDevice(ctx, id)
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return fail(http.StatusNotFound, CodeNotFound, err)
		}
		return storeErr(err)
	}
	if dev.AccountID != who.acc.ID {
		return fail(http.StatusNotFound, CodeNotFound, errors.New("device of another account"))
	}
	if err := s.revokeDevice(c, dev, "self-service: device signed out"); err != nil {
		return err
	}
	s.log.LogAttrs(c.Request().Context(), infoLevel, "device signed out by its owner",
		attrEvent("device_revoked"), attrRequestID(requestID(c)),
		attrAccountID(who.acc.ID), attrDeviceID(dev.ID), attrBy(who.dev.ID))
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}

// revokeDevice ends the device's session (refresh stops working, the store
// marks the device revoked) and adds a device entry to the revocation
// store, so that every mirror refuses the device's access tokens, not only
// this issuer's store check. The entry is written first: if the session
// step then fails the request fails and can be retried, and the device is
// already denied.
func (s *Server) revokeDevice(c echo.Context, dev account.Device, reason string) error {
	now := s.now().UTC()
	if _, err := s.addEntry(c, revocation.KindDevice, dev.ID, reason, now); err != nil {
		return err
	}
	if err := s.storeCall(c, "end_session", func(ctx context.Context) error {
		return s.store.EndSession(ctx, dev.ID, now)
	}); err != nil {
		return storeErr(err)
	}
	return nil
}
