package opsmetrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/internal/opsmetrics"
)

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallpass_test_gauge", Help: "a test gauge"}))
	var reasons []string
	h := opsmetrics.Handler(reg, func(context.Context) []string { return reasons }, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path string
		reasons      []string
		code         int
		body         string
	}{
		{"GET", "/healthz", nil, 200, `"status":"ok"`},
		{"GET", "/readyz", nil, 200, `"status":"ready"`},
		{"GET", "/readyz", []string{"revocation mirror: stale"}, 503, `"reasons":["revocation mirror: stale"]`},
		{"GET", "/metrics", nil, 200, "hallpass_test_gauge 0"},
		{"HEAD", "/healthz", nil, 200, ""},
		{"POST", "/healthz", nil, 405, ""},
		{"GET", "/v1/me", nil, 404, ""},
	} {
		reasons = tc.reasons
		code, body := get(tc.method, tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s (reasons %q): %d %q, want %d with %q", tc.method, tc.path, tc.reasons, code, body, tc.code, tc.body)
		}
	}
}

func TestReasons(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if why := opsmetrics.KeySetReason(now.Add(-time.Minute), now, time.Hour); why != "" {
		t.Errorf("fresh key set: %q", why)
	}
	if why := opsmetrics.KeySetReason(now.Add(-2*time.Hour), now, time.Hour); !strings.Contains(why, "key set: last fetched 2h0m0s ago (bound 1h0m0s") {
		t.Errorf("stale key set: %q", why)
	}
	// A clock stepped back past the fetch: remotekeys calls the set stale
	// (no known age), and readiness says so; a few seconds are fine.
	if why := opsmetrics.KeySetReason(now.Add(2*time.Hour), now, time.Hour); !strings.Contains(why, "in the future of this clock") {
		t.Fatalf("fetched 2h in the future: %q", why)
	}
	if why := opsmetrics.KeySetReason(now.Add(10*time.Second), now, time.Hour); why != "" {
		t.Fatalf("fetched 10s in the future: %q", why)
	}
	if why := opsmetrics.KeySetReason(time.Time{}, now, time.Hour); why != "key set: none of known age (not fetched from the issuer yet)" {
		t.Errorf("no key set of known age: %q", why)
	}
	if why := opsmetrics.MirrorReason(nil); why != "" {
		t.Errorf("ready mirror: %q", why)
	}
	if why := opsmetrics.MirrorReason(errors.New("stale")); why != "revocation mirror: stale" {
		t.Errorf("stale mirror: %q", why)
	}
}
