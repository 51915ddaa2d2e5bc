package opsmetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler is the ops listener of a hallpass process: GET and HEAD
// /healthz (200 while the process runs), /readyz (200, or 503 with the
// reasons notReady returns, logged to log) and /metrics (reg), 404 for
// any other path. The reasons are fixed text and the process's own
// figures, never request content.
func Handler(reg *prometheus.Registry, notReady func(ctx context.Context) []string, log *slog.Logger) http.Handler {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/healthz":
			writeStatus(w, http.StatusOK, "ok", nil)
		case "/readyz":
			if reasons := notReady(r.Context()); len(reasons) > 0 {
				log.Warn("not ready", slog.String("reasons", strings.Join(reasons, "; ")))
				writeStatus(w, http.StatusServiceUnavailable, "not ready", reasons)
				return
			}
			writeStatus(w, http.StatusOK, "ready", nil)
		case "/metrics":
			metrics.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// writeStatus writes {"status": status, "reasons": [...]}.
func writeStatus(w http.ResponseWriter, code int, status string, reasons []string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Status  string   `json:"status"`
		Reasons []string `json:"reasons,omitempty"`
	}{status, reasons})
}

// KeySetReason is the readiness reason of a key set last fetched at
// fetched, at now, against its bound (--keys-max-stale); "" when fresh. A
// zero fetched is a set of no known age (none fetched yet, or a cache file
// stamped in the future): never fresh.
func KeySetReason(fetched, now time.Time, maxStale time.Duration) string {
	if fetched.IsZero() {
		return "key set: none of known age (not fetched from the issuer yet)"
	}
	age := now.Sub(fetched)
	if age > maxStale {
		return fmt.Sprintf("key set: last fetched %v ago (bound %v, --keys-max-stale)", age.Round(time.Second), maxStale)
	}
	if age < -time.Minute {
		// remotekeys refuses such a set (its clock stepped back since the
		// fetch: no known age) until a fetch succeeds; so is readiness.
		return fmt.Sprintf("key set: fetched %v in the future of this clock (stepped back?): no known age", (-age).Round(time.Second))
	}
	return ""
}

// MirrorReason is the readiness reason of a revocation mirror whose Ready
// returned err; "" when err is nil.
func MirrorReason(err error) string {
	if err == nil {
		return ""
	}
	return "revocation mirror: " + err.Error()
}
