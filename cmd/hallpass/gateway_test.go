package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/revocation"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
)

// startGatewayCmd runs `hallpass gateway` in a goroutine until the test
// ends.
func startGatewayCmd(t *testing.T, args ...string) (string, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(string) string { return "" }}
	c, err := parseGatewayFlags(append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, args...), e)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() { done <- runGatewayServer(ctx, c, e, ready) }()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("gateway failed: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("gateway did not come up")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("gateway did not shut down")
		}
	})
	return url, logs
}

// gatewayErr runs the gateway with args and expects it to refuse to start.
func gatewayErr(t *testing.T, args ...string) error {
	t.Helper()
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	c, err := parseGatewayFlags(append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, args...), e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := runGatewayServer(ctx, c, e, nil); err != nil {
		return err
	}
	t.Fatal("gateway started")
	return nil
}

// echoHeaders is an upstream that answers with the headers it received.
func echoHeaders(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(s.Close)
	return s
}

// call sends method path to base with the device's token and a proof for
// base+path; forged identity headers ride along.
func (d *httpDevice) call(t *testing.T, client *http.Client, method, base, path string, extra http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	for k, v := range extra {
		req.Header[k] = v
	}
	if d.access != "" {
		p, err := dpop.NewProof(d.key, method, base+path, d.access, "")
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "DPoP "+d.access)
		req.Header.Set("DPoP", p)
	}
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func TestGatewayCommand(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	up := echoHeaders(t)
	cache := t.TempDir() + "/keys.json"
	gw, _ := startGatewayCmd(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL,
		"--trusted-proxies", "127.0.0.1/32", "--keys-cache-file", cache)

	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "gwuser")
	claims, _, err := unsafeClaims(d.access)
	if err != nil {
		t.Fatal(err)
	}
	forged := http.Header{"X-Hallpass-Account": {"acct_admin"}, "X_hallpass_device": {"dev_forged"}}

	st, _, body := d.call(t, nil, "GET", gw, "/api/items", forged)
	if st != 200 {
		t.Fatalf("through the gateway: %d %s", st, body)
	}
	var got http.Header
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Hallpass-Account") != claims.Subject || got.Get("X-Hallpass-Device") != claims.Device ||
		got.Get("X_hallpass_device") != "" || got.Get("DPoP") != "" || got.Get("Authorization") == "" {
		t.Fatalf("upstream saw %v", got)
	}

	// The forward-auth endpoint, asked by a trusted proxy (loopback here).
	fwd := http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"/api/items"}}
	req, _ := http.NewRequest("GET", gw+"/v1/verify", nil)
	req.Header = fwd.Clone()
	p, _ := dpop.NewProof(d.key, "GET", gw+"/api/items", d.access, "")
	req.Header.Set("Authorization", "DPoP "+d.access)
	req.Header.Set("DPoP", p)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Hallpass-Account") != claims.Subject {
		t.Fatalf("/v1/verify: %d %v", res.StatusCode, res.Header)
	}

	anon := &httpDevice{}
	if st, h, _ := anon.call(t, nil, "GET", gw, "/api/items", forged); st != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP") {
		t.Fatalf("no token: %d %v", st, h)
	}

	// A token of another issuer's key: refused.
	other := startServe(t, nil, "--dev", "--data", t.TempDir())
	d2 := newHTTPDevice(t, other.url, nil)
	d2.signup(t, "elsewhere")
	if st, _, _ := d2.call(t, nil, "GET", gw, "/api/items", nil); st != 401 {
		t.Fatalf("foreign token: %d", st)
	}

	// The key set was kept on disk: a second gateway starts from it while
	// the issuer is down.
	rs.stop(t)
	gw2, _ := startGatewayCmd(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL, "--keys-cache-file", cache)
	if st, _, body := d.call(t, nil, "GET", gw2, "/x", nil); st != 200 {
		t.Fatalf("from the cached key set: %d %s", st, body)
	}
}

// TestGatewayRedisRevocation: with --store the gateway follows the
// issuer's revocations (revocation/redisstore) and shares its replay cache.
func TestGatewayRedisRevocation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs := startServe(t, nil, "--dev", "--data", t.TempDir(), "--store", srv.URL())
	up := echoHeaders(t)
	gw, _ := startGatewayCmd(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL, "--store", srv.URL())

	alice, bob := newHTTPDevice(t, rs.url, nil), newHTTPDevice(t, rs.url, nil)
	alice.signup(t, "alice")
	bob.signup(t, "bob")
	for _, d := range []*httpDevice{alice, bob} {
		if st, _, body := d.call(t, nil, "GET", gw, "/x", nil); st != 200 {
			t.Fatalf("before revocation: %d %s", st, body)
		}
	}

	claims, _, err := unsafeClaims(bob.access)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := revredis.New(client, revredis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := revocation.NewEntry(revocation.KindDevice, claims.Device, "test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Add(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, body := bob.call(t, nil, "GET", gw, "/x", nil)
		if st == 401 && strings.Contains(string(body), "token_revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked device still accepted: %d %s", st, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, _, body := alice.call(t, nil, "GET", gw, "/x", nil); st != 200 {
		t.Fatalf("bystander: %d %s", st, body)
	}
}

// TestTLSMinimum: with a certificate, serve and gateway refuse TLS 1.1 and,
// by default, TLS 1.2; --tls-min 1.2 lets 1.2 in (never 1.1).
func TestTLSMinimum(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	issuer := startServe(t, nil, "--dev", "--data", t.TempDir())
	up := echoHeaders(t)
	start := map[string]func(extra ...string) string{
		"serve": func(extra ...string) string {
			return startServe(t, nil, append([]string{"--dev", "--data", t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile}, extra...)...).url
		},
		"gateway": func(extra ...string) string {
			u, _ := startGatewayCmd(t, append([]string{"--keys-url", issuer.url + wellKnownKeys, "--upstream", up.URL, "--tls-cert", certFile, "--tls-key", keyFile}, extra...)...)
			return u
		},
	}
	handshake := func(t *testing.T, base string, version uint16) error {
		u := strings.TrimPrefix(base, "https://")
		conn, err := tls.Dial("tcp", u, &tls.Config{RootCAs: pool, MinVersion: version, MaxVersion: version})
		if err != nil {
			return err
		}
		defer conn.Close()
		if got := conn.ConnectionState().Version; got != version {
			return errors.New("negotiated another version")
		}
		return nil
	}
	for name, startFn := range start {
		t.Run(name, func(t *testing.T) {
			def := startFn()
			if !strings.HasPrefix(def, "https://") {
				t.Fatalf("public URL %s", def)
			}
			if err := handshake(t, def, tls.VersionTLS13); err != nil {
				t.Fatalf("TLS 1.3 refused: %v", err)
			}
			for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS12} {
				if err := handshake(t, def, v); err == nil {
					t.Fatalf("%s accepted by default", tls.VersionName(v))
				}
			}
			old := startFn("--tls-min", "1.2")
			if err := handshake(t, old, tls.VersionTLS12); err != nil {
				t.Fatalf("TLS 1.2 refused with --tls-min 1.2: %v", err)
			}
			if err := handshake(t, old, tls.VersionTLS11); err == nil {
				t.Fatal("TLS 1.1 accepted with --tls-min 1.2")
			}
		})
	}
	if err := serveErr(t, nil, "--dev", "--data", dir, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-min", "1.1"); !errors.Is(err, errUsage) {
		t.Fatalf("serve --tls-min 1.1: %v", err)
	}
}

// TestGatewayTLSClient: a device reaches the gateway over TLS 1.3.
func TestGatewayTLSClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	issuer := startServe(t, nil, "--dev", "--data", t.TempDir())
	up := echoHeaders(t)
	gw, _ := startGatewayCmd(t, "--keys-url", issuer.url+wellKnownKeys, "--upstream", up.URL, "--tls-cert", certFile, "--tls-key", keyFile)
	d := newHTTPDevice(t, issuer.url, nil)
	d.signup(t, "tlsuser")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if st, _, body := d.call(t, client, "GET", gw, "/secure", nil); st != 200 {
		t.Fatalf("%d %s", st, body)
	}
}

func TestGatewayFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	cases := []struct {
		name string
		args []string
	}{
		{"no keys url", nil},
		{"keys url without well-known path", []string{"--keys-url", "https://auth.example/keys"}},
		{"keys url not http", []string{"--keys-url", "ftp://auth.example" + wellKnownKeys}},
		{"tls cert without key", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--tls-cert", certFile}},
		{"tls min 1.1", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-min", "1.1"}},
		{"bad proxies", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--trusted-proxies", "nope"}},
		{"bad log level", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--log-level", "loud"}},
		{"arguments", []string{"extra"}},
		{"bad store", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--store", "memcached://x"}},
		{"keys max stale below 1m", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--keys-max-stale", "59s"}},
		{"keys max stale 0", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--keys-max-stale", "0"}},
		{"read timeout 0", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--read-timeout", "0"}},
		{"read header timeout negative", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--read-header-timeout", "-1s"}},
		{"idle timeout 0", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--idle-timeout", "0"}},
		{"read header timeout above read timeout", []string{"--keys-url", "https://auth.example" + wellKnownKeys, "--read-header-timeout", "2m"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := gatewayErr(t, tc.args...); !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
	// An unreachable issuer without a cached key set: no start.
	if err := gatewayErr(t, "--keys-url", "http://127.0.0.1:1"+wellKnownKeys); err == nil || errors.Is(err, errUsage) {
		t.Fatalf("unreachable issuer: %v", err)
	}
}
