package account

import (
	"fmt"
	"math"
)

// Size bounds every Store enforces on one record; the issuer's own limits
// are tighter.
const (
	// MaxField bounds any one string field.
	MaxField = 1024
	// MaxSuccessor bounds the sealed successor pair.
	MaxSuccessor = 8 << 10
)

func invalid(what string) error { return fmt.Errorf("%w: %s", ErrInvalidRequest, what) }

// ValidateNewAccount checks an account record before a Store writes it.
func ValidateNewAccount(a Account) error {
	switch {
	case !ValidID(AccountPrefix, a.ID):
		return invalid("account id")
	case a.Username == "" || a.UsernameKey == "" || len(a.Username) > MaxField || len(a.UsernameKey) > MaxField:
		return invalid("username")
	case a.Created.IsZero():
		return invalid("account created")
	}
	return nil
}

// ValidateNewDevice checks a new device and its session before a Store
// writes them, and fills a zero LastUsed from Created.
func ValidateNewDevice(d *Device, s *Session) error {
	switch {
	case !ValidID(DevicePrefix, d.ID):
		return invalid("device id")
	case !ValidID(AccountPrefix, d.AccountID):
		return invalid("device account id")
	case s.DeviceID != d.ID || s.AccountID != d.AccountID:
		return invalid("session does not belong to the device")
	case d.JKT == "" || s.JKT != d.JKT || len(d.JKT) > MaxField || len(d.Name) > MaxField:
		return invalid("device key thumbprint or name")
	case d.Created.IsZero() || s.Created.IsZero() || s.Expires.IsZero():
		return invalid("device or session times")
	case !d.Revoked.IsZero() || !s.Ended.IsZero():
		return invalid("new device already revoked")
	case len(s.Successor) > MaxSuccessor || s.Counter == math.MaxUint64:
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

// ValidateRefresh checks a refresh request before a Store applies it.
func ValidateRefresh(r RefreshRequest) error {
	switch {
	case r.Now.IsZero():
		return invalid("refresh time")
	case r.Grace < 0 || r.Idle < 0:
		return invalid("refresh windows")
	case len(r.Successor) == 0 || len(r.Successor) > MaxSuccessor:
		return invalid("successor")
	case r.Counter == math.MaxUint64:
		return invalid("counter")
	}
	return nil
}
