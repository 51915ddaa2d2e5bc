package main

import (
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/redistest"
)

// TestServeMirrorMetrics: `hallpass serve` exports its revocation mirror's
// lag and size under the gateway's names, so that one alert covers both.
func TestServeMirrorMetrics(t *testing.T) {
	t.Parallel()
	_, metrics := startServeMetrics(t, "--dev", "--data", t.TempDir())
	_, text := httpGet(t, metrics+"/metrics")
	checkMetrics(t, text, []metricRange{
		{"hallpass_revocation_mirror_age_seconds", 0, 5},
		{"hallpass_revocation_mirror_max_staleness_seconds", 5, 5},
		{"hallpass_revocation_mirror_entries", 0, 0},
	})
}

// TestServeAccountViewCache: on a redis:// store `hallpass serve` answers
// /v1/me from its account view cache and says so in its metrics; a rename
// shows at once; on bbolt there is no cache and no such series.
func TestServeAccountViewCache(t *testing.T) {
	t.Parallel()
	t.Run("one node", func(t *testing.T) {
		t.Parallel()
		serveViewCache(t, redistest.Start(t).URL())
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		sen := redistest.StartSentinel(t)
		serveViewCache(t, "redis+sentinel://"+sen.Addr()+"/0?master_name="+redistest.SentinelMaster)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		cl := redistest.StartCluster(t, 3)
		serveViewCache(t, "redis+cluster://"+cl.Addrs()[0]+"?addr="+cl.Addrs()[1]+"&addr="+cl.Addrs()[2])
	})
	t.Run("bbolt", func(t *testing.T) {
		t.Parallel()
		_, bolt := startServeMetrics(t, "--dev", "--data", t.TempDir())
		if _, text := httpGet(t, bolt+"/metrics"); strings.Contains(text, "hallpass_account_view_cache") {
			t.Error("bbolt serve exports account view cache metrics")
		}
	})
}

// serveViewCache drives serve on a Redis store: /v1/me is served from the
// account view cache, and a rename shows at once.
func serveViewCache(t *testing.T, store string) {
	rs, metrics := startServeMetrics(t, "--dev", "--data", t.TempDir(), "--store", store)
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "viewer")
	for range 5 {
		if got := d.me(t); got != "viewer" {
			t.Fatalf("/v1/me: %q", got)
		}
	}
	if st, m := d.do(t, "PATCH", "/v1/me", "application/json", `{"username":"viewer2"}`, d.access); st != 200 {
		t.Fatalf("rename: %d %v", st, m)
	}
	for range 5 {
		if got := d.me(t); got != "viewer2" {
			t.Fatalf("/v1/me after the rename: %q", got)
		}
	}
	_, text := httpGet(t, metrics+"/metrics")
	checkMetrics(t, text, []metricRange{
		{"hallpass_account_view_cache_hits_total", 1, 10},
		{"hallpass_account_view_cache_misses_total", 2, 10},
		{"hallpass_account_view_cache_entries", 1, 1},
		{"hallpass_account_view_cache_size", 65536, 65536},
	})
}
