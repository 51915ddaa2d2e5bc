package opsmetrics_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hallpass/hallpass/gateway"
	"github.com/hallpass/hallpass/internal/opsmetrics"
)

var _ gateway.Observer = (*opsmetrics.Gateway)(nil)

// value gathers reg and returns the value of the series name{labels}
// (labels as "k=v" pairs), and whether it exists.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Gauge != nil:
					return m.GetGauge().GetValue(), true
				case m.Counter != nil:
					return m.GetCounter().GetValue(), true
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount()), true
				}
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels []string) bool {
	have := map[string]bool{}
	for _, l := range m.GetLabel() {
		have[l.GetName()+"="+l.GetValue()] = true
	}
	for _, l := range labels {
		if !have[l] {
			return false
		}
	}
	return len(have) == len(labels)
}

// gauge registers c on a fresh registry and returns its value.
func gauge(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	v, ok := value(t, reg, name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	return v
}

type fakeMirror struct {
	heard time.Time
	n     int
}

func (f *fakeMirror) LastHeard() time.Time        { return f.heard }
func (f *fakeMirror) MaxStaleness() time.Duration { return 5 * time.Second }
func (f *fakeMirror) Len() int                    { return f.n }

func TestRevocation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		heard   time.Time
		entries int
		wantAge float64
	}{
		{"heard 3s ago", now.Add(-3 * time.Second), 7, 3},
		{"never heard", time.Time{}, 0, math.Inf(1)},
		{"clock stepped back", now.Add(time.Minute), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := opsmetrics.Revocation(&fakeMirror{tt.heard, tt.entries}, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 3 {
				t.Fatalf("%d collectors, want 3", len(cs))
			}
			if got := gauge(t, cs[0], "hallpass_revocation_mirror_age_seconds"); got != tt.wantAge {
				t.Errorf("age %v, want %v", got, tt.wantAge)
			}
			if got := gauge(t, cs[1], "hallpass_revocation_mirror_max_staleness_seconds"); got != 5 {
				t.Errorf("max staleness %v, want 5", got)
			}
			if got := gauge(t, cs[2], "hallpass_revocation_mirror_entries"); got != float64(tt.entries) {
				t.Errorf("entries %v, want %d", got, tt.entries)
			}
		})
	}
	if _, err := opsmetrics.Revocation(nil, nil); !errors.Is(err, opsmetrics.ErrConfig) {
		t.Fatalf("nil mirror: %v", err)
	}
}

func TestKeySetAge(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fetched := now.Add(-90 * time.Second)
	c, err := opsmetrics.KeySetAge(func() time.Time { return fetched }, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, c, "hallpass_key_set_age_seconds"); got != 90 {
		t.Fatalf("age %v, want 90", got)
	}
	if _, err := opsmetrics.KeySetAge(nil, nil); !errors.Is(err, opsmetrics.ErrConfig) {
		t.Fatalf("nil func: %v", err)
	}
}

func TestGateway(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, err := opsmetrics.NewGateway(reg)
	if err != nil {
		t.Fatal(err)
	}
	g.Request(gateway.OutcomeAllowed, "")
	g.Request(gateway.OutcomeAllowed, "")
	g.Request(gateway.OutcomeRefused, "token_revoked")
	g.Request(gateway.OutcomeError, "unavailable")
	g.Authenticated(2 * time.Millisecond)
	tests := []struct {
		outcome, code string
		want          float64
	}{
		{"allowed", "ok", 2},
		{"refused", "token_revoked", 1},
		{"error", "unavailable", 1},
		{"refused", "invalid_token", 0}, // exported before the first
		{"error", "bad_gateway", 0},
	}
	for _, tt := range tests {
		got, ok := value(t, reg, "hallpass_gateway_requests_total", "outcome="+tt.outcome, "code="+tt.code)
		if !ok || got != tt.want {
			t.Errorf("requests{%s,%s} = %v (present %v), want %v", tt.outcome, tt.code, got, ok, tt.want)
		}
	}
	if n, ok := value(t, reg, "hallpass_gateway_verify_duration_seconds"); !ok || n != 1 {
		t.Fatalf("verify histogram count %v (present %v), want 1", n, ok)
	}
	if _, err := opsmetrics.NewGateway(reg); err == nil {
		t.Fatal("registered twice on one registry")
	}
}
