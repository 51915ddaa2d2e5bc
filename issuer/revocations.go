package issuer

import (
	"context"
	"errors"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/revocation"
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
// longest an access token of this issuer lives plus the leeway.
func (s *Server) entryTTL() time.Duration {
	return revocation.EntryTTL(s.cfg.AccessTTL, s.cfg.Leeway)
}

// newEntry builds an entry made at now.
func (s *Server) newEntry(kind revocation.Kind, id, reason string, now time.Time) (revocation.Entry, error) {
	return revocation.NewEntry(kind, id, reason, now, s.entryTTL())
}

// addEntry writes an entry to the revocation store, when one is
// configured, and returns the stored entry. Without a store it does nothing
// (the issuer's own store check still refuses a revoked device).
func (s *Server) addEntry(c echo.Context, kind revocation.Kind, id, reason string, now time.Time) (revocation.Entry, error) {
	if s.revStore == nil {
		return revocation.Entry{}, nil
	}
	e, err := s.newEntry(kind, id, reason, now)
	if err != nil {
		return revocation.Entry{}, errInvalidRequest(err)
	}
	var stored revocation.Entry
	if err := s.storeCall(c, "revocation_add", func(ctx context.Context) error {
		var err error
		stored, err = s.revStore.Add(ctx, e)
		return err
	}); err != nil {
		if errors.Is(err, revocation.ErrInvalidEntry) {
			return revocation.Entry{}, errInvalidRequest(err)
		}
		return revocation.Entry{}, storeErr(err)
	}
	if o, ok := s.cfg.RevocationMirror.(entryObserver); ok {
		o.Observe(stored)
	}
	return stored, nil
}
