package flow

import (
	"context"
	"errors"
	"fmt"

	"github.com/hallpass/hallpass/account"
)

// linkCodeRoom is how many live link codes the account may hold for a new
// one to be made: Config.MaxLinkCodes, or fewer when its active devices
// and Config.MaxDevices leave less room, and capped, whether the device
// limit bound it. Every device an account gains beyond its first comes
// from a link code (a recovery signs the others out), so holding active
// devices plus live codes to MaxDevices at code creation holds the devices
// to it (a recovery that keeps the other devices is checked by
// recoveryRoom). The count is read before the store's atomic step, which counts
// the live codes: a redemption in between (a code becoming a device)
// lets one more code through, so an account can reach MaxDevices + 1,
// never more (past the cap no code is made).
func (f *Flows) linkCodeRoom(ctx context.Context, accountID string) (room int, capped bool, err error) {
	var devs []account.Device
	err = f.call(ctx, "list_devices", func(ctx context.Context) error {
		var err error
		devs, err = f.cfg.Store.ListDevices(ctx, accountID)
		return err
	})
	switch {
	case errors.Is(err, account.ErrNotFound):
		// The account is gone (deleted under the call): as the store's
		// own step answers it, the caller's token is revoked.
		return 0, false, fail(ErrTokenRevoked, err)
	case err != nil:
		return 0, false, storeErr("list_devices", err)
	}
	active := 0
	for _, d := range devs {
		if d.Active() {
			active++
		}
	}
	byDevices := f.cfg.MaxDevices - active
	if byDevices < f.cfg.MaxLinkCodes {
		return byDevices, true, nil
	}
	return f.cfg.MaxLinkCodes, false, nil
}

// deviceLimit is the answer of a link code past Config.MaxDevices.
func (f *Flows) deviceLimit(cause error) *Error {
	return &Error{Code: ErrDeviceLimit.Code, Err: cause,
		Detail: fmt.Sprintf("This account has %d devices, live link codes counted, the most allowed; sign a device out first.", f.cfg.MaxDevices)}
}

// recoveryRoom refuses a recovery that keeps the account's other devices
// (RecoverRequest.SignOutOthers false) when its active devices and live
// link codes already reach Config.MaxDevices: ErrDeviceLimit, before the
// recovery code is spent, advising to sign the others out with it. It
// answers so for any code, right or wrong, so it tells that such an
// account exists, which signup's username_taken tells anyway. The
// stand-in of an unknown name has no devices and passes (same reads).
func (f *Flows) recoveryRoom(ctx context.Context, accountID string) error {
	var n int
	err := f.call(ctx, "count_devices", func(ctx context.Context) error {
		devs, err := f.cfg.Store.ListDevices(ctx, accountID)
		if err != nil && !errors.Is(err, account.ErrNotFound) {
			return err
		}
		live, err := f.cfg.Store.CountLinkCodes(ctx, accountID, f.now().UTC())
		if err != nil && !errors.Is(err, account.ErrNotFound) {
			return err
		}
		n = live
		for _, d := range devs {
			if d.Active() {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return storeErr("count_devices", err)
	}
	if n >= f.cfg.MaxDevices {
		return &Error{Code: ErrDeviceLimit.Code, Err: errors.New("active devices at the limit"),
			Detail: fmt.Sprintf("This account has %d devices, live link codes counted, the most allowed; recover with sign_out_other_devices, or sign a device out first.", f.cfg.MaxDevices)}
	}
	return nil
}
