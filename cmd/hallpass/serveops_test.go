package main

import (
	"testing"
)

// TestServeMirrorMetrics: `hallpass serve` exports its revocation mirror's
// lag and size under the gateway's names, so that one alert covers both.
func TestServeMirrorMetrics(t *testing.T) {
	t.Parallel()
	_, metrics := startServeMetrics(t, "--dev", "--data", t.TempDir())
	_, text := httpGet(t, metrics+"/metrics")
	for _, c := range []struct {
		series   string
		min, max float64
	}{
		{"hallpass_revocation_mirror_age_seconds", 0, 5},
		{"hallpass_revocation_mirror_max_staleness_seconds", 5, 5},
		{"hallpass_revocation_mirror_entries", 0, 0},
	} {
		v, ok := metricValue(t, text, c.series)
		if !ok || v < c.min || v > c.max {
			t.Errorf("%s = %v (present %v), want %v to %v", c.series, v, ok, c.min, c.max)
		}
	}
}
