package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/redistest"
)

// startGatewayOps runs the gateway with an ops listener on a free port and
// returns the public URL and the ops listener's base URL.
func startGatewayOps(t *testing.T, args ...string) (gw, ops string) {
	t.Helper()
	bound := make(chan string, 1)
	gw = startGatewayWith(t, func(c *gatewayConfig) { c.ops.metricsBound = func(a string) { bound <- a } },
		append([]string{"--metrics-listen", "127.0.0.1:0"}, args...)...)
	return gw, "http://" + <-bound
}

// metricRange is a series and the values it may have.
type metricRange struct {
	series   string
	min, max float64
}

// checkMetrics checks that every series in want is in text, within its range.
func checkMetrics(t *testing.T, text string, want []metricRange) {
	t.Helper()
	for _, c := range want {
		v, ok := metricValue(t, text, c.series)
		if !ok || v < c.min || v > c.max {
			t.Errorf("%s = %v (present %v), want %v to %v", c.series, v, ok, c.min, c.max)
		}
	}
}

// metricValue reads the value of the series line "name{labels} value" (or
// "name value") from a Prometheus text exposition; false when absent.
func metricValue(t *testing.T, text, series string) (float64, bool) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v, true
}

// TestGatewayOps is the test of issue 14, item 4: `hallpass gateway` had
// no /healthz, /readyz or /metrics (those paths were proxied and answered
// 401). They are now on the gateway's own ops listener, and only there.
func TestGatewayOps(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	up := echoHeaders(t)
	gw, ops := startGatewayOps(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL,
		"--store", srv.URL(), "--revocation-max-staleness", "1s", "--store-timeout", "300ms")
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "opsuser")

	if st, body := httpGet(t, ops+"/healthz"); st != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz: %d %s", st, body)
	}
	if st, body := httpGet(t, ops+"/readyz"); st != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz: %d %s", st, body)
	}
	if st, _, body := d.call(t, nil, "GET", gw, "/x", nil); st != 200 {
		t.Fatalf("allowed request: %d %s", st, body)
	}
	if st, body := httpGet(t, gw+"/x"); st != 401 {
		t.Fatalf("request without a token: %d %s", st, body)
	}
	_, text := httpGet(t, ops+"/metrics")
	checkMetrics(t, text, []metricRange{
		{`hallpass_gateway_requests_total{code="ok",outcome="allowed"}`, 1, 1},
		{`hallpass_gateway_requests_total{code="invalid_token",outcome="refused"}`, 1, 1},
		{`hallpass_gateway_requests_total{code="unavailable",outcome="error"}`, 0, 0},
		{`hallpass_gateway_verify_duration_seconds_count`, 2, 2},
		{`hallpass_key_set_age_seconds`, 0, 60},
		{`hallpass_revocation_mirror_age_seconds`, 0, 1},
		{`hallpass_revocation_mirror_max_staleness_seconds`, 1, 1},
		{`hallpass_revocation_mirror_entries`, 0, 0},
	})

	// Redis goes away: the mirror goes stale, the ping fails, and /readyz
	// says both (the key set is still fresh).
	srv.Stop(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body := httpGet(t, ops+"/readyz")
		if st == 503 && strings.Contains(body, "revocation mirror: ") && strings.Contains(body, "redis: no answer") {
			if strings.Contains(body, "key set") {
				t.Fatalf("/readyz blames the fresh key set: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with Redis stopped: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st, _, body := d.call(t, nil, "GET", gw, "/x", nil); st != 503 {
		t.Fatalf("request while the mirror is stale: %d %s", st, body)
	}
	_, text = httpGet(t, ops+"/metrics")
	if v, _ := metricValue(t, text, `hallpass_gateway_requests_total{code="unavailable",outcome="error"}`); v != 1 {
		t.Errorf("unavailable errors = %v, want 1", v)
	}
	if v, _ := metricValue(t, text, `hallpass_revocation_mirror_age_seconds`); v <= 1 {
		t.Errorf("mirror age %v with Redis stopped, want above the 1s bound", v)
	}
}

// TestGatewayOpsNotPublic: the ops paths are not the gateway's on the
// public listener: they are verified and proxied like any other path
// (401 without a token, the upstream's answer with one), and the ops
// listener answers nothing else.
func TestGatewayOpsNotPublic(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	up := echoHeaders(t)
	gw, ops := startGatewayOps(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL)
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "opspublic")
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if st, body := httpGet(t, gw+p); st != 401 {
			t.Errorf("public %s without a token: %d %s", p, st, body)
		}
		st, _, body := d.call(t, nil, "GET", gw, p, nil)
		var echoed http.Header
		if st != 200 || json.Unmarshal(body, &echoed) != nil || echoed.Get("X-Hallpass-Account") == "" {
			t.Errorf("public %s with a token: %d %s, want the upstream's answer", p, st, body)
		}
	}
	if st, _ := httpGet(t, ops+"/x"); st != 404 {
		t.Errorf("ops listener /x: %d, want 404", st)
	}
	res, err := http.Post(ops+"/readyz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz: %d, want 405", res.StatusCode)
	}
}

// TestGatewayReadyzKeySetStale: past --keys-max-stale without a good
// fetch, /readyz names the key set.
func TestGatewayReadyzKeySetStale(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	clk := &fakeClock{t: time.Now()}
	bound := make(chan string, 1)
	startGatewayWith(t, func(c *gatewayConfig) {
		c.keysNow = clk.Now
		c.ops.metricsBound = func(a string) { bound <- a }
	}, "--keys-url", rs.url+wellKnownKeys, "--metrics-listen", "127.0.0.1:0", "--keys-max-stale", "1h")
	ops := "http://" + <-bound
	rs.stop(t)
	if st, body := httpGet(t, ops+"/readyz"); st != 200 {
		t.Fatalf("/readyz within the bound: %d %s", st, body)
	}
	clk.Add(2 * time.Hour)
	st, body := httpGet(t, ops+"/readyz")
	if st != 503 || !strings.Contains(body, "key set: last fetched") {
		t.Fatalf("/readyz past --keys-max-stale: %d %s", st, body)
	}
	_, text := httpGet(t, ops+"/metrics")
	if v, _ := metricValue(t, text, "hallpass_key_set_age_seconds"); v < 7200 {
		t.Fatalf("key set age %v, want at least 7200", v)
	}
}

// TestGatewayOpsFlags: the operations flags' defaults (the ops listener on
// loopback, the token cache on) and what they refuse.
func TestGatewayOpsFlags(t *testing.T) {
	t.Parallel()
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	c, err := parseGatewayFlags(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ops.resolve(c.listen); err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(c.ops.metricsListen); host != "127.0.0.1" || c.ops.tokenCacheSize != defaultGatewayTokenCache {
		t.Fatalf("defaults: --metrics-listen %s, token cache %d", c.ops.metricsListen, c.ops.tokenCacheSize)
	}
	off, err := parseGatewayFlags([]string{"--token-cache", "off", "--metrics-listen", "off"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.ops.resolve(off.listen); err != nil || off.ops.tokenCacheSize != 0 || off.ops.verifierOptions() != nil {
		t.Fatalf("--token-cache off: %v, size %d", err, off.ops.tokenCacheSize)
	}
	keys := []string{"--keys-url", "http://127.0.0.1:1" + wellKnownKeys}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"ops on the public listener", []string{"--listen", "127.0.0.1:8081", "--metrics-listen", "127.0.0.1:8081"}},
		{"ops not an address", []string{"--metrics-listen", "admin"}},
		{"token cache zero", []string{"--token-cache", "0"}},
		{"token cache too big", []string{"--token-cache", "99999999"}},
		{"no idle upstream connections", []string{"--upstream-max-idle", "0"}},
		{"negative idle timeout", []string{"--upstream-idle-timeout", "-1s"}},
		{"zero header timeout", []string{"--upstream-header-timeout", "0s"}},
		{"profiles on all interfaces", []string{"--pprof-listen", "0.0.0.0:6061"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := gatewayErr(t, append(keys, tt.args...)...); !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
}

// TestGatewayUpstreamReuse: `hallpass gateway` reuses its upstream
// connections (issue 12, item 2): sequential requests share one, and 8
// concurrent clients need at most 8, not one per request.
func TestGatewayUpstreamReuse(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	gw, _ := startGatewayCmd(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL)
	const clients, perClient = 8, 20
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	t.Cleanup(client.CloseIdleConnections)
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "reuse")
	for range 30 {
		if st, _, body := d.call(t, client, "GET", gw, "/x", nil); st != 200 {
			t.Fatalf("%d %s", st, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("30 sequential requests opened %d upstream connections, want 1", n)
	}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range perClient {
				if st, _, body := d.call(t, client, "GET", gw, "/x", nil); st != 200 {
					t.Errorf("%d %s", st, body)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := conns.Load(); n > clients+1 {
		t.Fatalf("%d clients x %d requests opened %d upstream connections, want at most %d", clients, perClient, n, clients+1)
	}
}

// TestGatewayPprof: --pprof-listen serves Go's profiles on a loopback
// listener of its own, and nothing of them on the public or ops listener.
func TestGatewayPprof(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	bound, prof := make(chan string, 2), make(chan string, 1)
	gw := startGatewayWith(t, func(c *gatewayConfig) {
		c.ops.metricsBound = func(a string) { bound <- a }
		c.ops.prof.bound = func(a string) { prof <- a }
	}, "--keys-url", rs.url+wellKnownKeys, "--pprof-listen", "127.0.0.1:0")
	ops := "http://" + <-bound
	if st, body := httpGet(t, "http://"+<-prof+"/debug/pprof/cmdline"); st != 200 || body == "" {
		t.Fatalf("profiles listener: %d %q", st, body)
	}
	for _, base := range []string{gw, ops} {
		if st, _ := httpGet(t, base+"/debug/pprof/cmdline"); st == 200 {
			t.Errorf("%s serves profiles", base)
		}
	}
}
