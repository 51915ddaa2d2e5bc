package main

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/ratelimit"
)

// httpGet fetches url and returns its status and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// startServeMetrics is startServe with --metrics-listen on a free port; it
// returns the metrics listener's URL too.
func startServeMetrics(t *testing.T, args ...string) (*runningServer, string) {
	t.Helper()
	bound := make(chan string, 1)
	rs := startServeWith(t, nil, func(c *serveConfig) { c.guard.metricsBound = func(addr string) { bound <- addr } },
		append([]string{"--metrics-listen", "127.0.0.1:0"}, args...)...)
	return rs, boundURL(t, bound, "metrics")
}

// TestServeMetricsListen is the regression test of issue 11, finding 8:
// /metrics on the public listener showed signup volume, reuse detections,
// rate-limit and proof-failure counters to anyone. Now the public listener
// answers 404; the metrics are on the admin listener (without an admin
// key) by default, on an address of their own, or off.
func TestServeMetricsListen(t *testing.T) {
	t.Parallel()
	t.Run("admin listener by default", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		keysFile := filepath.Join(data, "admin-keys")
		runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile, "--id", "ops")
		rs, adminURL := startServeAdmin(t, nil, "--dev", "--data", data, "--admin-keys-file", keysFile)
		waitReady(t, rs.url)
		if st, _ := httpGet(t, rs.url+"/metrics"); st != http.StatusNotFound {
			t.Fatalf("public /metrics: %d", st)
		}
		st, body := httpGet(t, adminURL+"/metrics")
		if st != http.StatusOK || !strings.Contains(body, `hallpass_http_requests_total{code="200",method="GET",route="/readyz"}`) || !strings.Contains(body, "go_goroutines") {
			t.Fatalf("admin /metrics: %d\n%.500s", st, body)
		}
		// The rest of the admin listener still wants a key.
		if st, _ := httpGet(t, adminURL+"/v1/admin/revocations"); st != http.StatusUnauthorized {
			t.Fatalf("admin API without a key: %d", st)
		}
		// The public health endpoints stay public.
		for _, p := range []string{"/healthz", "/readyz"} {
			if st, _ := httpGet(t, rs.url+p); st != http.StatusOK {
				t.Fatalf("public %s: %d", p, st)
			}
		}
	})
	t.Run("own address", func(t *testing.T) {
		t.Parallel()
		rs, metricsURL := startServeMetrics(t, "--dev", "--data", t.TempDir())
		waitReady(t, rs.url)
		if st, _ := httpGet(t, rs.url+"/metrics"); st != http.StatusNotFound {
			t.Fatalf("public /metrics: %d", st)
		}
		if st, body := httpGet(t, metricsURL+"/metrics"); st != http.StatusOK || !strings.Contains(body, "hallpass_signups_total") {
			t.Fatalf("metrics listener: %d", st)
		}
		for _, p := range []string{"/", "/healthz", "/v1/accounts", "/metrics/x"} {
			if st, _ := httpGet(t, metricsURL+p); st != http.StatusNotFound {
				t.Fatalf("metrics listener %s: %d", p, st)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		keysFile := filepath.Join(data, "admin-keys")
		runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile)
		rs, adminURL := startServeAdmin(t, nil, "--dev", "--data", data, "--admin-keys-file", keysFile, "--metrics-listen", "off")
		waitReady(t, rs.url)
		for _, u := range []string{rs.url, adminURL} {
			if st, _ := httpGet(t, u+"/metrics"); st == http.StatusOK {
				t.Fatalf("%s/metrics served with --metrics-listen off", u)
			}
		}
	})
	t.Run("no admin listener", func(t *testing.T) {
		t.Parallel()
		rs := startServe(t, nil, "--dev", "--data", t.TempDir())
		if st, _ := httpGet(t, rs.url+"/metrics"); st != http.StatusNotFound {
			t.Fatalf("public /metrics: %d", st)
		}
		if !strings.Contains(rs.logs.String(), "metrics not served: no admin listener") {
			t.Fatal("no notice that the metrics are not served")
		}
	})
}

func TestServeGuardFlags(t *testing.T) {
	t.Parallel()
	e := &env{stderr: io.Discard, getenv: func(k string) string {
		return map[string]string{"HALLPASS_SIGNUP_LIMIT_PER_SITE": "200/h", "HALLPASS_METRICS_LISTEN": "127.0.0.1:9191"}[k]
	}}
	c, err := parseServeFlags([]string{"--signup-limit-per-net", "off"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.resolve(); err != nil {
		t.Fatal(err)
	}
	g := c.guard
	if g.perNet != ratelimit.Disabled || g.perSite != (ratelimit.Rule{Limit: 200, Per: time.Hour}) || g.reserve != (ratelimit.Rule{}) || g.metricsListen != "127.0.0.1:9191" {
		t.Fatalf("%+v", g)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--signup-limit-per-net", "lots"}, "--signup-limit-per-net"},
		{[]string{"--signup-limit-per-site", "0/h"}, "--signup-limit-per-site"},
		{[]string{"--signup-reserve", "-1/h"}, "--signup-reserve"},
		{[]string{"--metrics-listen", "public"}, "--metrics-listen"},
		{[]string{"--listen", "127.0.0.1:8080", "--metrics-listen", "127.0.0.1:8080"}, "--metrics-listen"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			err := serveErr(t, nil, append([]string{"--dev", "--data", t.TempDir()}, tc.args...)...)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("%v, want a usage error naming %s", err, tc.flag)
			}
		})
	}
}
