package issuer

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

const infoLevel = slog.LevelInfo

// Allow-listed audit attributes: ids only.
func attrEvent(s string) slog.Attr     { return slog.String("event", s) }
func attrAccountID(s string) slog.Attr { return slog.String("account_id", s) }
func attrDeviceID(s string) slog.Attr  { return slog.String("device_id", s) }
func attrBy(s string) slog.Attr        { return slog.String("by_device_id", s) }

// AuditRecord is one admin call: who made it (the admin key's id, or "-"
// when no key matched), what (method and route template, and the ids it
// targeted), when, and the result. It never holds a key, a token or a
// request body.
type AuditRecord struct {
	Time      time.Time         `json:"time"`
	Who       string            `json:"who"`
	Action    string            `json:"action"`            // "POST /v1/admin/revocations"
	Targets   map[string]string `json:"targets,omitempty"` // "device_id": "dev_...", "kind": "device", ...
	Status    int               `json:"status"`
	Result    string            `json:"result"` // "ok" or the problem code
	RequestID string            `json:"request_id"`
	ClientIP  string            `json:"client_ip"`
}

// AuditSink receives a record of every admin call, after the slog line the
// issuer always writes. Implementations: MemoryAudit (tests, one process),
// issuer/redisaudit (a capped Redis stream shared by every node). Record
// should not block for long: it runs in the request, bounded by the store
// timeout. A failure is logged; the call's answer does not change (the
// slog line is the record of last resort).
type AuditSink interface {
	Record(ctx context.Context, r AuditRecord) error
}

// MemoryAudit keeps the most recent records in memory. The zero value
// keeps 1000.
type MemoryAudit struct {
	// Max bounds the records kept (oldest dropped). Zero means 1000.
	Max int

	mu  sync.Mutex
	buf []AuditRecord
}

// Record implements AuditSink.
func (m *MemoryAudit) Record(_ context.Context, r AuditRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	max := m.Max
	if max <= 0 {
		max = 1000
	}
	m.buf = append(m.buf, r)
	if len(m.buf) > max {
		m.buf = append(m.buf[:0], m.buf[len(m.buf)-max:]...)
	}
	return nil
}

// Records returns a copy of the kept records, oldest first.
func (m *MemoryAudit) Records() []AuditRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]AuditRecord(nil), m.buf...)
}

// logAudit writes the audit line. The fields are an allow-list.
func (s *Server) logAudit(ctx context.Context, r AuditRecord) {
	attrs := []slog.Attr{
		attrEvent("admin_call"),
		slog.String("who", r.Who),
		slog.String("action", r.Action),
		slog.Int("status", r.Status),
		slog.String("result", r.Result),
		slog.Time("at", r.Time),
		attrRequestID(r.RequestID),
		slog.String("client_ip", r.ClientIP),
	}
	if len(r.Targets) > 0 {
		ta := make([]any, 0, len(r.Targets))
		for k, v := range r.Targets {
			ta = append(ta, slog.String(k, v))
		}
		attrs = append(attrs, slog.Group("targets", ta...))
	}
	level := infoLevel
	if r.Status >= 400 {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(ctx, level, "admin audit", attrs...)
}
