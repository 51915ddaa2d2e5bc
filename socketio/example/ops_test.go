package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/redistest"
)

// TestRunOps starts the command as a user does, over TLS, following a real
// Redis, with its ops listener on an address of its own: /healthz and
// /readyz answer, /metrics has every series, one accepted and one refused
// handshake show in the counters, and once Redis is killed the socket is
// dropped (counted) and /readyz answers 503 naming the revocation mirror.
func TestRunOps(t *testing.T) {
	p := newPKI(t)
	issuer := newKeyServer(t, p)
	rs := redistest.Start(t)
	logs := &syncLog{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
			"--issuer", testIssuer, "--audience", testAudience, "--tls-cert", p.certFile, "--tls-key", p.keyFile,
			"--keys-url", issuer.url, "--keys-ca", p.caFile, "--revocation-redis", rs.URL(),
			"--revocation-max-staleness", "1s", "--recheck", "100ms"}, logs)
	}()
	htu := logs.waitListening(t, errc, cancel)
	o := &opsClient{t: t, c: p.client(), url: "https://" + logs.addrOf(t, "ops listener (healthz, readyz, metrics)")}
	defer o.c.CloseIdleConnections()

	o.expect("/healthz", http.StatusOK, `"ok"`)
	o.expect("/readyz", http.StatusOK, `"ready"`)
	o.expect("/nope", http.StatusNotFound, "")
	text := o.expect("/metrics", http.StatusOK, "")
	for _, name := range []string{"hallpass_key_set_age_seconds", "hallpass_revocation_mirror_age_seconds",
		"hallpass_revocation_mirror_max_staleness_seconds", "hallpass_revocation_mirror_entries",
		"hallpass_socket_connections", "hallpass_socket_handshakes_total", "hallpass_socket_disconnects_total", "go_goroutines"} {
		if !strings.Contains(text, "\n# TYPE "+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
	o.metric(`hallpass_socket_handshakes_total{code="ok",outcome="allowed"}`, 0)
	o.metric(`hallpass_socket_disconnects_total{code="unavailable"}`, 0)

	f := &fixture{url: strings.TrimSuffix(htu, socketPath), pki: p, issuer: issuer}
	dev, other := newDevice(t, "acc_olga", "dev_olga"), newDevice(t, "acc_olga", "dev_other")
	tok := f.mint(t, dev, time.Now().Add(-2*time.Second))
	c := f.runClient(t, tok, f.proof(t, dev.key, tok), "websocket")
	c.connected(dev)
	tok2 := f.mint(t, dev, time.Now().Add(-2*time.Second))
	if e := f.runClient(t, tok2, f.proof(t, other.key, tok2), "websocket").expect("connect_error"); e.Message != "invalid_dpop_proof" {
		t.Fatalf("proof by another key: connect_error %q", e.Message)
	}
	o.metric(`hallpass_socket_handshakes_total{code="ok",outcome="allowed"}`, 1)
	o.metric(`hallpass_socket_handshakes_total{code="invalid_dpop_proof",outcome="refused"}`, 1)
	o.metric(`hallpass_socket_connections`, 1)

	rs.Stop(t)
	c.kicked("unavailable")
	o.metric(`hallpass_socket_disconnects_total{code="unavailable"}`, 1)
	o.metric(`hallpass_socket_connections`, 0)
	o.expect("/readyz", http.StatusServiceUnavailable, "revocation mirror: ")
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// opsClient reads the ops listener.
type opsClient struct {
	t   *testing.T
	c   *http.Client
	url string
}

// expect GETs path and checks its status and that the body contains want;
// it returns the body.
func (o *opsClient) expect(path string, status int, want string) string {
	o.t.Helper()
	resp, err := o.c.Get(o.url + path)
	if err != nil {
		o.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		o.t.Fatal(err)
	}
	if resp.StatusCode != status || !strings.Contains(string(body), want) {
		o.t.Fatalf("GET %s: %d %s, want %d and %q", path, resp.StatusCode, body, status, want)
	}
	return string(body)
}

// metric waits (5 s at most: a socket that leaves is forgotten when the
// server notices) until the series, as the text format writes it (labels
// sorted by name), has the value want.
func (o *opsClient) metric(series string, want float64) {
	o.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, ok := sample(o.expect("/metrics", http.StatusOK, ""), series)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("%s = %v (present %v), want %v", series, got, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sample is the value of series in a text exposition.
func sample(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// addrOf waits (10 s at most) for the log line msg and returns its addr.
func (l *syncLog) addrOf(t *testing.T, msg string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg {
				return rec.Addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line within 10s:\n%s", msg, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
