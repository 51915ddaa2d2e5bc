package issuer

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
)

// Admin routes of the refresh-token keys.
const (
	PathAdminKeysRotateRefresh = "/v1/admin/keys/rotate-refresh"
	PathAdminSessionsEndAll    = "/v1/admin/sessions/end-all"
	adminReasonSessionsEnded   = "admin: every session ended"
)

// RefreshKeyManager changes the refresh-token keys for the admin API,
// through the key ring's store, so that the change is durable and every
// node follows it, and so that Config.Refresh serves it at once (in
// cmd/hallpass, keys/live.Secrets does both). The admin API finds it on
// Config.KeyManager: a KeyManager that also implements RefreshKeyManager
// serves POST /v1/admin/keys/rotate-refresh and
// /v1/admin/sessions/end-all; without one they answer 503.
type RefreshKeyManager interface {
	// RotateRefresh makes a new key, which seals from now on; the
	// replaced keys still open the tokens they sealed until the longest
	// refresh lifetime has passed, then they are pruned.
	RotateRefresh(ctx context.Context) error
	// EndAllSessions drops every key but a new one: no refresh token
	// issued before opens any more.
	EndAllSessions(ctx context.Context) error
}

// adminRefreshRoutes registers the refresh-key routes of the admin API.
func (s *Server) adminRefreshRoutes(e *echo.Echo) {
	e.POST(PathAdminKeysRotateRefresh, s.handleAdminRotateRefresh)
	e.POST(PathAdminSessionsEndAll, s.handleAdminEndAllSessions)
}

// refreshKeysResponse lists the ids (k4.lid, one-way hashes) of the keys
// this node opens refresh tokens with, the sealing key first, and, after
// end-all, the "all" entry that refuses the access tokens issued before.
type refreshKeysResponse struct {
	RefreshKeys []keys.KeyID `json:"refresh_keys"`
	Entry       *entryView   `json:"entry,omitempty"`
}

func (s *Server) refreshKeyManager() (RefreshKeyManager, error) {
	if rm, ok := s.cfg.KeyManager.(RefreshKeyManager); ok {
		return rm, nil
	}
	return nil, errUnavailable(errors.New("no refresh-key manager configured"))
}

// refreshKeys audits and returns what this node now serves.
func (s *Server) refreshKeys(c echo.Context) []keys.KeyID {
	ids := s.cfg.Refresh.KeyIDs()
	if len(ids) > 0 {
		target(c, "refresh_kid", string(ids[0]))
	}
	return ids
}

// handleAdminRotateRefresh: POST /v1/admin/keys/rotate-refresh. Routine:
// no session ends.
func (s *Server) handleAdminRotateRefresh(c echo.Context) error {
	rm, err := s.refreshKeyManager()
	if err != nil {
		return err
	}
	if err := s.keyCall(c, "refresh_key_rotate", rm.RotateRefresh); err != nil {
		return storeErr(err)
	}
	noStore(c)
	return c.JSON(http.StatusOK, refreshKeysResponse{RefreshKeys: s.refreshKeys(c)})
}

// handleAdminEndAllSessions: POST /v1/admin/sessions/end-all, for a real
// compromise. The refresh-token keys are replaced first (no refresh token
// issued before opens, on this node at once and on the others as soon as
// they follow the store), then an "all" entry refuses every access token
// issued before, everywhere. Every device must join its account again
// with a link or recovery code.
func (s *Server) handleAdminEndAllSessions(c echo.Context) error {
	rm, err := s.refreshKeyManager()
	if err != nil {
		return err
	}
	target(c, "sessions", "all")
	if err := s.keyCall(c, "end_all_sessions", rm.EndAllSessions); err != nil {
		return storeErr(err)
	}
	out := refreshKeysResponse{RefreshKeys: s.refreshKeys(c)}
	if s.revStore != nil {
		e, err := s.addEntry(c, revocation.KindAll, "", adminReasonSessionsEnded)
		if err != nil {
			return err
		}
		v := viewEntry(e)
		out.Entry = &v
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}
