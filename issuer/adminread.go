package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Admin routes that read who is calling and what was done.
const (
	PathAdminWhoami = "/v1/admin/whoami"
	PathAdminAudit  = "/v1/admin/audit"
	// DefaultAuditLimit and MaxAuditLimit bound GET /v1/admin/audit's
	// ?limit.
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditReader is implemented by an AuditSink that can give its records
// back (MemoryAudit, issuer/redisaudit): GET /v1/admin/audit reads
// Config.AuditSink through it, and answers 503 when the sink is not one.
type AuditReader interface {
	// Recent returns at most n records, the newest first.
	Recent(ctx context.Context, n int) ([]AuditRecord, error)
}

// Recent implements AuditReader.
func (m *MemoryAudit) Recent(_ context.Context, n int) ([]AuditRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]AuditRecord, 0, min(n, len(m.buf)))
	for i := len(m.buf) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, m.buf[i])
	}
	return out, nil
}

// adminReadRoutes registers the read-only routes of the admin API that the
// console (issuer/console) needs too.
func (s *Server) adminReadRoutes(e *echo.Echo) {
	e.GET(PathAdminWhoami, s.handleAdminWhoami)
	e.GET(PathAdminAudit, s.handleAdminAudit)
}

type whoamiResponse struct {
	KeyID string `json:"key_id"`
}

// handleAdminWhoami: GET /v1/admin/whoami, the id of the key that made the
// call (adminGate accepted it), never the key.
func (s *Server) handleAdminWhoami(c echo.Context) error {
	rec, ok := c.Get(ctxAudit).(*AuditRecord)
	if !ok || rec.Who == auditWhoUnauthenticated {
		return errInternal(errors.New("whoami without an accepted key"))
	}
	noStore(c)
	return c.JSON(http.StatusOK, whoamiResponse{KeyID: rec.Who})
}

type auditResponse struct {
	Records []AuditRecord `json:"records"`
}

// handleAdminAudit: GET /v1/admin/audit?limit=N, the last records of the
// audit sink, newest first.
func (s *Server) handleAdminAudit(c echo.Context) error {
	r, ok := s.cfg.AuditSink.(AuditReader)
	if !ok {
		return errUnavailable(errors.New("the audit sink cannot be read back"))
	}
	n, err := queryLimit(c, DefaultAuditLimit, MaxAuditLimit)
	if err != nil {
		return err
	}
	var recs []AuditRecord
	if err := s.storeCall(c, "audit_read", func(ctx context.Context) error {
		var err error
		recs, err = r.Recent(ctx, n)
		return err
	}); err != nil {
		return storeErr(err)
	}
	if recs == nil {
		recs = []AuditRecord{}
	}
	noStore(c)
	return c.JSON(http.StatusOK, auditResponse{Records: recs})
}

// queryLimit reads an admin listing's ?limit=N: def when absent, else a
// number from 1 to most (0: no upper bound), or 400 invalid_request.
func queryLimit(c echo.Context, def, most int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	switch {
	case most > 0 && (err != nil || n < 1 || n > most):
		return 0, errInvalidRequest(fmt.Errorf("limit must be 1 to %d", most))
	case err != nil || n < 1:
		return 0, errInvalidRequest(errors.New("limit must be a positive number"))
	}
	return n, nil
}
