package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The account life cycle beyond signup (docs/api.md, "Account life
// cycle"): a second device joins through a link code made on a signed-in
// one; a lost device is replaced with a recovery code; an account is
// renamed or deleted from any of its devices.

// Paths of the life-cycle endpoints.
const (
	pathLinkCodes     = "/v1/me/link-codes"
	pathLink          = "/v1/link"
	pathRecoveryCodes = "/v1/me/recovery-codes"
	pathRecover       = "/v1/recover"
	pathMe            = "/v1/me"
)

// maxCodeLen bounds a link or recovery code from the server; the API's
// are 14 and 23 characters.
const maxCodeLen = 64

// CreateLinkCode makes a single-use link code for this client's account,
// to type (or scan) on a new device, which redeems it with Link before it
// expires (10 minutes by default). Only a few may be live at once: one
// more is an *APIError with code rate_limited. An account with as many
// devices as the server allows (live link codes counted) gets code
// device_limit (CodeDeviceLimit): sign one out with RevokeDevice first.
//
// SECURITY: whoever redeems the code first joins the account as a device
// of its own. Show it to the user only, never log it.
func (c *Client) CreateLinkCode(ctx context.Context) (code string, expires time.Time, err error) {
	var out struct {
		Code      string    `json:"code"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := c.CallJSON(ctx, http.MethodPost, pathLinkCodes, nil, &out); err != nil {
		return "", time.Time{}, err
	}
	if !validCodeText(out.Code) || out.ExpiresAt.IsZero() {
		return "", time.Time{}, fmt.Errorf("%w: missing or malformed link code", ErrBadResponse)
	}
	return out.Code, out.ExpiresAt, nil
}

// Link joins this device to the account of linkCode (made by
// CreateLinkCode on a signed-in device of it) and saves the session: the
// client must hold no session (ErrAlreadySignedUp), and its key becomes
// the new device's, proved to the server as at signup. deviceName labels
// the device ("" lets the server choose). A wrong, expired or used code is
// ErrInvalidLinkCode (one answer for all three).
//
// An answer lost after the server redeemed the code (a network error, a
// 502-504) can be got back: call Link again on the same Client (the same
// key) with the same code within the code's lifetime (10 minutes), before
// anything else; the server answers with the device the lost request
// created.
//
// Like Signup, a session that could not be saved is returned with an
// ErrPersist error.
func (c *Client) Link(ctx context.Context, linkCode, deviceName string) (*Session, error) {
	return c.join(ctx, pathLink, struct {
		LinkCode   string `json:"link_code"`
		DeviceName string `json:"device_name,omitempty"`
	}{linkCode, deviceName})
}

// CreateRecoveryCodes makes a new set of recovery codes for this client's
// account (10, each usable once with Recover), replacing any earlier set.
// The server keeps only digests: this is the one time the codes are seen.
// Me tells how many are left.
//
// SECURITY: each code, with the username, is a way into the account from a
// new device. Show them to the user only, to be written down or kept in a
// password manager; never log or store them beside the state.
func (c *Client) CreateRecoveryCodes(ctx context.Context) ([]string, error) {
	var out struct {
		Codes []string `json:"codes"`
	}
	if err := c.CallJSON(ctx, http.MethodPost, pathRecoveryCodes, nil, &out); err != nil {
		return nil, err
	}
	if len(out.Codes) == 0 || len(out.Codes) > 100 {
		return nil, fmt.Errorf("%w: no recovery codes", ErrBadResponse)
	}
	for _, code := range out.Codes {
		if !validCodeText(code) {
			return nil, fmt.Errorf("%w: malformed recovery code", ErrBadResponse)
		}
	}
	return out.Codes, nil
}

// Recover brings back the account named username on this device with one
// of its recovery codes (used up by it) and saves the session, keeping the
// account's id and username: for a lost device, or one that was logged out
// or signed out. The client must hold no session (ErrAlreadySignedUp); its
// key becomes the new device's, proved as at signup. With signOutOthers,
// every other device of the account is signed out (what a lost or stolen
// device calls for).
//
// A wrong or used code and an unknown username are the same
// ErrInvalidRecoveryCode. Guessing is rate limited: an *APIError with
// code rate_limited and a RetryAfter. An answer lost after the server used
// the code (a network error, a 502-504) can be got back: call Recover
// again on the same Client (the same key) with the same arguments within
// 5 minutes, before anything else; the server answers with the device the
// lost request created.
func (c *Client) Recover(ctx context.Context, username, recoveryCode, deviceName string, signOutOthers bool) (*Session, error) {
	return c.join(ctx, pathRecover, struct {
		Username      string `json:"username"`
		RecoveryCode  string `json:"recovery_code"`
		DeviceName    string `json:"device_name,omitempty"`
		SignOutOthers bool   `json:"sign_out_other_devices"`
	}{username, recoveryCode, deviceName, signOutOthers})
}

// Rename changes the account's username (under the same policy as
// signup: username_invalid, username_taken) and saves it in the state. The
// old name stays taken for a while (30 days by default), so that nobody
// else can pose as the account under it.
func (c *Client) Rename(ctx context.Context, username string) (*Me, error) {
	var m Me
	if err := c.CallJSON(ctx, http.MethodPatch, pathMe, struct {
		Username string `json:"username"`
	}{username}, &m); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Write the name over the store's newest tokens, never over them with
	// older ones held in memory (another process may have refreshed).
	if _, err := c.reloadLocked(ctx, c.dirty); err != nil {
		return &m, err
	}
	if st := c.state; st.HasSession() && st.AccountID == m.AccountID && st.Username != m.Username {
		ns := st.clone()
		ns.Username = m.Username
		if err := c.saveLocked(ns); err != nil {
			return &m, err
		}
	}
	return &m, nil
}

// DeleteAccount deletes this client's account: every device is signed out,
// every token of the account is refused from now on, and the username
// stays taken for a while (30 days by default). Then the local session and
// the account's ids are dropped from the state (the device key stays, and
// may sign up again). It cannot be undone.
//
// If the server says this device's session had ended already, the
// account is not deleted: the tokens are dropped and the error returned.
func (c *Client) DeleteAccount(ctx context.Context) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.idle()
	if err := c.CallJSON(ctx, http.MethodDelete, pathMe, nil, nil); err != nil {
		if sessionGone(err) {
			if derr := c.dropSession(false); derr != nil {
				return errors.Join(err, derr)
			}
		}
		return err
	}
	return c.dropSession(true)
}

// validCodeText accepts the shape of the API's codes only (letters, digits
// and hyphens, bounded), so that a hostile server cannot put other text on
// the user's screen through them.
func validCodeText(s string) bool {
	if s == "" || len(s) > maxCodeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
