package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// Device is one device of the account, as GET /v1/me/devices lists it.
type Device struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
	// Revoked is when the device was signed out; nil while Active.
	Revoked *time.Time `json:"revoked,omitempty"`
	Active  bool       `json:"active"`
	// Current marks this client's own device.
	Current bool `json:"current"`
}

// Devices lists the devices of this client's account, signed out ones
// included.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out struct {
		Devices []Device `json:"devices"`
	}
	if err := c.CallJSON(ctx, http.MethodGet, "/v1/me/devices", nil, &out); err != nil {
		return nil, err
	}
	return out.Devices, nil
}

// RevokeDevice signs out another device of this client's account: its
// refresh token stops working and its access tokens are refused. A device
// of another account, or an unknown id, is an *APIError with code
// not_found. To sign out this device, use Logout (which also clears the
// local state).
func (c *Client) RevokeDevice(ctx context.Context, deviceID string) error {
	if deviceID == "" {
		return errors.New("client: empty device id")
	}
	return c.CallJSON(ctx, http.MethodDelete, "/v1/me/devices/"+url.PathEscape(deviceID), nil, nil)
}

// CodeNotFound: no such endpoint or resource (RevokeDevice of a device
// that is not this account's).
const CodeNotFound = "not_found"
