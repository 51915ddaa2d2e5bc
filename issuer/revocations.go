package issuer

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// RevocationMirror is the verifier-side view of the denylist: a
// revocation.Mirror. The issuer passes it to its verifier
// (verifier.WithRevocation) for /v1/me, /v1/logout and /v1/me/devices, and
// asks it for /readyz.
type RevocationMirror interface {
	verifier.RevocationChecker
	// Ready returns nil while the mirror is fresh enough to vouch for
	// tokens (revocation.ErrStale otherwise).
	Ready() error
}

// entryObserver is implemented by revocation.Mirror: the issuer hands it
// each entry it writes so that its own endpoints refuse the revoked tokens
// at once, not one stream round trip later.
type entryObserver interface {
	Observe(revocation.Entry)
}

// entryTTL is how long a token, device or account entry must live: the
// longest any access token can live (token.MaxTTL, 60 min, which every
// verifier enforces) plus the largest leeway a verifier may grant
// (verifier.MaxLeeway). Not the current AccessTTL: tokens minted before a
// restart with a lower --access-ttl are still alive, and an entry that
// expired before them would let them back in once it did. Nor only this
// issuer's Leeway: gateways and services verify with their own.
func (s *Server) entryTTL() time.Duration {
	return revocation.EntryTTL(token.MaxTTL, max(s.cfg.Leeway, verifier.MaxLeeway))
}

// addEntry writes an entry (flow.AddEntry) for an admin handler.
func (s *Server) addEntry(c echo.Context, kind revocation.Kind, id, reason string) (revocation.Entry, error) {
	e, err := s.flows.AddEntry(c.Request().Context(), kind, id, reason)
	if err != nil {
		return e, flowError(err)
	}
	return e, nil
}

// revokeDevice signs a device out (flow.RevokeDevice) for an admin handler.
func (s *Server) revokeDevice(c echo.Context, dev account.Device, reason string) error {
	if err := s.flows.RevokeDevice(c.Request().Context(), dev.ID, reason); err != nil {
		return flowError(err)
	}
	return nil
}
