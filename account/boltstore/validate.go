package boltstore

import (
	"fmt"
	"math"

	"github.com/hallpass/hallpass/account"
)

// Size bounds keep one record small; the issuer's own limits are tighter.
const (
	maxField     = 1024
	maxSuccessor = 8 << 10
)

func invalid(what string) error { return fmt.Errorf("%w: %s", account.ErrInvalidRequest, what) }

func validAccount(a account.Account) error {
	switch {
	case !account.ValidID(account.AccountPrefix, a.ID):
		return invalid("account id")
	case a.Username == "" || a.UsernameKey == "" || len(a.Username) > maxField || len(a.UsernameKey) > maxField:
		return invalid("username")
	case a.Created.IsZero():
		return invalid("account created")
	}
	return nil
}

// validDevice checks a new device and its session and fills a zero LastUsed
// from Created.
func validDevice(d *account.Device, s *account.Session) error {
	switch {
	case !account.ValidID(account.DevicePrefix, d.ID):
		return invalid("device id")
	case !account.ValidID(account.AccountPrefix, d.AccountID):
		return invalid("device account id")
	case s.DeviceID != d.ID || s.AccountID != d.AccountID:
		return invalid("session does not belong to the device")
	case d.JKT == "" || s.JKT != d.JKT || len(d.JKT) > maxField || len(d.Name) > maxField:
		return invalid("device key thumbprint or name")
	case d.Created.IsZero() || s.Created.IsZero() || s.Expires.IsZero():
		return invalid("device or session times")
	case !d.Revoked.IsZero() || !s.Ended.IsZero():
		return invalid("new device already revoked")
	case len(s.Successor) > maxSuccessor || s.Counter == math.MaxUint64:
		return invalid("session")
	}
	if d.LastUsed.IsZero() {
		d.LastUsed = d.Created
	}
	if s.LastUsed.IsZero() {
		s.LastUsed = s.Created
	}
	return nil
}

func validRefresh(r account.RefreshRequest) error {
	switch {
	case r.Now.IsZero():
		return invalid("refresh time")
	case r.Grace < 0 || r.Idle < 0:
		return invalid("refresh windows")
	case len(r.Successor) == 0 || len(r.Successor) > maxSuccessor:
		return invalid("successor")
	case r.Counter == math.MaxUint64:
		return invalid("counter")
	}
	return nil
}
