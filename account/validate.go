package account

import (
	"fmt"
	"math"
	"time"
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
	case len(a.RecoverySalt) > 0 || len(a.RecoveryCodes) > 0:
		return ValidateRecoveryCodes(a.RecoverySalt, a.RecoveryCodes)
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
	case len(r.RetryDigest) != 0 && len(r.RetryDigest) != RetryDigestSize:
		return invalid("retry digest")
	}
	return nil
}

// Bounds on the lifecycle records. Digests are HMAC-SHA-256 outputs in
// practice; the store accepts any length in [MinDigest, MaxDigest].
const (
	MinDigest = 16
	MaxDigest = 64
	// MaxSalt bounds the per-account recovery salt.
	MaxSalt = 64
	// MaxRecoveryCodes bounds the recovery codes of one account.
	MaxRecoveryCodes = 64
)

// ValidateDigest checks a link or recovery code digest.
func ValidateDigest(d []byte) error {
	if len(d) < MinDigest || len(d) > MaxDigest {
		return invalid("digest length")
	}
	return nil
}

// ValidateRecoveryCodes checks a new recovery code set: a salt of 1 to
// MaxSalt bytes and at most MaxRecoveryCodes distinct digests (none is
// fine: it clears the codes).
func ValidateRecoveryCodes(salt []byte, digests [][]byte) error {
	if len(salt) == 0 || len(salt) > MaxSalt {
		return invalid("recovery salt")
	}
	if len(digests) > MaxRecoveryCodes {
		return invalid("too many recovery codes")
	}
	seen := make(map[string]bool, len(digests))
	for _, d := range digests {
		if err := ValidateDigest(d); err != nil {
			return err
		}
		if seen[string(d)] {
			return invalid("duplicate recovery code digest")
		}
		seen[string(d)] = true
	}
	return nil
}

// ValidateLinkCode checks a new link code before a Store writes it: it
// must still be live at now and name the device that made it (only codes
// stored before that was recorded have none).
func ValidateLinkCode(lc LinkCode, maxLive int, now time.Time) error {
	switch {
	case !ValidID(AccountPrefix, lc.AccountID):
		return invalid("link code account id")
	case !ValidID(DevicePrefix, lc.DeviceID):
		return invalid("link code device id")
	case maxLive < 1:
		return invalid("maxLive")
	case lc.Created.IsZero() || now.IsZero() || !lc.Expires.After(now) || !lc.Expires.After(lc.Created):
		return invalid("link code times")
	}
	return ValidateDigest(lc.Digest)
}

// BindDevice sets the account of a device joining an account the Store
// resolved itself (RedeemLinkCode, UseRecoveryCode), then validates the
// device and its session as ValidateNewDevice does.
func BindDevice(d *Device, s *Session, accountID string) error {
	d.AccountID, s.AccountID = accountID, accountID
	return ValidateNewDevice(d, s)
}

// ValidateRename checks the arguments of RenameAccount.
func ValidateRename(newDisplay, newKey string, now, holdUntil time.Time) error {
	switch {
	case newDisplay == "" || newKey == "" || len(newDisplay) > MaxField || len(newKey) > MaxField:
		return invalid("username")
	case now.IsZero() || holdUntil.IsZero():
		return invalid("rename times")
	}
	return nil
}
