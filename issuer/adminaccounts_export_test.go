package issuer

import "github.com/hallpass/hallpass/account"

// FirstDevices exposes firstDevices to the external tests.
func FirstDevices(devs []account.Device, n int) []account.Device { return firstDevices(devs, n) }
