package issuer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/problem"
	"github.com/hallpass/hallpass/ratelimit"
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
	// Dropped, on the record of a refused call (Who "-"), is how many
	// refused calls this node counted but did not record since the
	// previous refused call it recorded (Config.AuditRefusedPerMinute).
	Dropped int `json:"dropped,omitempty"`
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
	if r.Dropped > 0 {
		attrs = append(attrs, slog.Int("dropped", r.Dropped))
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

// Defaults of the admin guard (Config.AuditRefusedPerMinute,
// Config.AdminAuthLimit).
const DefaultAuditRefusedPerMinute = 60

// DefaultAdminAuthLimit is the default budget of failed admin
// authentications per client address and node.
var DefaultAdminAuthLimit = ratelimit.Rule{Limit: 10, Per: time.Minute}

// adminGuardKeys bounds the addresses whose failed authentications are
// remembered; past it the least constrained are forgotten.
const adminGuardKeys = 10_000

// adminGuard keeps admin calls refused before any key was accepted from
// costing more than a counter: failed authentications are limited per
// client address, and refused calls reach the audit record only as a
// sample.
type adminGuard struct {
	limiter *ratelimit.Memory // nil: no limit
	rule    ratelimit.Rule
	sample  auditSampler
	refused *prometheus.CounterVec
	dropped prometheus.Counter
}

func newAdminGuard(cfg Config) (*adminGuard, error) {
	g := &adminGuard{rule: cfg.AdminAuthLimit}
	if g.rule == (ratelimit.Rule{}) {
		g.rule = DefaultAdminAuthLimit
	}
	if err := g.rule.Validate(); err != nil {
		return nil, errors.New("issuer: AdminAuthLimit: " + err.Error())
	}
	if !g.rule.Unlimited() {
		m, err := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: adminGuardKeys})
		if err != nil {
			return nil, err
		}
		g.limiter = m
	}
	switch n := cfg.AuditRefusedPerMinute; {
	case n == 0:
		g.sample.perMinute = DefaultAuditRefusedPerMinute
	case n > 0:
		g.sample.perMinute = n
	}
	g.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hallpass_admin_refused_total",
		Help: "Admin calls refused before any admin key was accepted, by result (unauthorized, rate_limited, ...).",
	}, []string{"result"})
	// Both results exist at 0 from the start: a burst of refusals that
	// falls between two scrapes is then an increase, not a new series'
	// first sample, which Prometheus' increase() does not count.
	for _, r := range []string{problem.Unauthorized, problem.RateLimited} {
		g.refused.WithLabelValues(r)
	}
	g.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hallpass_admin_audit_dropped_total",
		Help: "Refused admin calls counted but not recorded in the audit log and sink (over the per-minute sample).",
	})
	for _, c := range []prometheus.Collector{g.refused, g.dropped} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// blocked reports whether ip has spent its budget of failed
// authentications, and when it may try again.
func (g *adminGuard) blocked(ip string, now time.Time) (time.Duration, bool) {
	if g.limiter == nil {
		return 0, false
	}
	d, _ := g.limiter.Peek(context.Background(), clientKey(ip), g.rule, now) // Memory: no error for a valid rule
	return d.RetryAfter, !d.Allowed
}

// failed counts one failed authentication from ip; false (and when to try
// again) when it was over the budget.
func (g *adminGuard) failed(ip string, now time.Time) (time.Duration, bool) {
	if g.limiter == nil {
		return 0, true
	}
	d, _ := g.limiter.Allow(context.Background(), clientKey(ip), g.rule, now)
	return d.RetryAfter, d.Allowed
}

// auditSampler admits at most perMinute refused calls to the audit record
// per minute (a window that opens at the first call after the last one
// closed) and counts the others.
type auditSampler struct {
	perMinute int // 0: none

	mu      sync.Mutex
	start   time.Time
	n       int
	dropped int // since the last one admitted
}

// take reports whether a refused call at now is recorded and, if so, how
// many were dropped before it.
func (a *auditSampler) take(now time.Time) (record bool, dropped int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.start) >= time.Minute || now.Before(a.start) {
		a.start, a.n = now, 0
	}
	if a.n >= a.perMinute {
		a.dropped++
		return false, 0
	}
	a.n++
	dropped, a.dropped = a.dropped, 0
	return true, dropped
}

// auditRefused counts a call refused before any admin key was accepted and
// records it (log line and sink) when the sample has room: junk sent to
// the admin listener must not push real records out of a capped sink, nor
// flood the log.
func (s *Server) auditRefused(ctx context.Context, r AuditRecord) {
	g := s.adminGuard
	g.refused.WithLabelValues(r.Result).Inc()
	ok, dropped := g.sample.take(s.now())
	if !ok {
		g.dropped.Inc()
		return
	}
	r.Dropped = dropped
	s.audit(ctx, r)
}
