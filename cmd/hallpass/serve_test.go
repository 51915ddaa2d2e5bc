package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/ratelimit"
)

// runningServer is `hallpass serve` running in a goroutine.
type runningServer struct {
	url    string
	logs   *logbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startServe parses args and environ as the command would and serves until
// stop. It fails the test if the server does not come up.
func startServe(t *testing.T, environ map[string]string, args ...string) *runningServer {
	t.Helper()
	return startServeWith(t, environ, nil, args...)
}

// startServeWith is startServe with hook (if not nil) applied to the
// parsed configuration before serving.
func startServeWith(t *testing.T, environ map[string]string, hook func(*serveConfig), args ...string) *runningServer {
	t.Helper()
	logs := &logbuf.Buffer{}
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(k string) string { return environ[k] }}
	c, err := parseServeFlags(append([]string{"--listen", "127.0.0.1:0"}, args...), e)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningServer{logs: logs, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { rs.done <- serve(ctx, c, e, ready) }()
	select {
	case rs.url = <-ready:
	case err := <-rs.done:
		cancel()
		t.Fatalf("serve failed: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("serve did not come up")
	}
	t.Cleanup(func() { rs.stop(t) })
	return rs
}

// boundURL is the URL of the listener that sent its address on bound as
// serve came up; it fails the test if there is none.
func boundURL(t *testing.T, bound <-chan string, listener string) string {
	t.Helper()
	select {
	case addr := <-bound:
		return "http://" + addr
	default:
		t.Fatalf("no %s listener", listener)
		return ""
	}
}

// stop cancels the context (as SIGTERM does) and waits for a clean exit.
func (rs *runningServer) stop(t *testing.T) {
	t.Helper()
	if rs.cancel == nil {
		return
	}
	rs.cancel()
	rs.cancel = nil
	select {
	case err := <-rs.done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("serve did not shut down")
	}
}

// serveErr runs serve with args and expects it to refuse to start.
func serveErr(t *testing.T, environ map[string]string, args ...string) error {
	t.Helper()
	logs := &logbuf.Buffer{}
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(k string) string { return environ[k] }}
	c, err := parseServeFlags(append([]string{"--listen", "127.0.0.1:0"}, args...), e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ready := make(chan string, 1)
	err = serve(ctx, c, e, ready)
	if err == nil {
		t.Fatal("serve started")
	}
	select {
	case <-ready:
		t.Fatal("serve listened before failing")
	default:
	}
	return err
}

// httpDevice is a minimal device for driving the server over HTTP.
type httpDevice struct {
	key    ed25519.PrivateKey
	base   string
	client *http.Client
	access string
	rt     string
}

func newHTTPDevice(t *testing.T, base string, client *http.Client) *httpDevice {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &httpDevice{key: k, base: base, client: client}
}

func (d *httpDevice) do(t *testing.T, method, path, ct, body, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, d.base+path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "DPoP "+token)
	}
	p, err := dpop.NewProof(d.key, method, d.base+path, token, "")
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("DPoP", p)
	res, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func (d *httpDevice) signup(t *testing.T, name string) {
	t.Helper()
	st, m := d.do(t, "POST", "/v1/accounts", "application/json", `{"username":"`+name+`"}`, "")
	if st != 201 {
		t.Fatalf("signup: %d %v", st, m)
	}
	d.access, d.rt = m["access_token"].(string), m["refresh_token"].(string)
}

func (d *httpDevice) refresh(t *testing.T) {
	t.Helper()
	st, m := d.do(t, "POST", "/v1/token", "application/x-www-form-urlencoded",
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {d.rt}}.Encode(), "")
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, m)
	}
	d.access, d.rt = m["access_token"].(string), m["refresh_token"].(string)
}

func (d *httpDevice) me(t *testing.T) string {
	t.Helper()
	st, m := d.do(t, "GET", "/v1/me", "", "", d.access)
	if st != 200 {
		t.Fatalf("/v1/me: %d %v", st, m)
	}
	return m["username"].(string)
}

// TestServeDevRestart: `serve --dev` creates a plaintext ring with a loud
// warning, serves the whole flow on bolt, shuts down on cancel, and after a
// restart on the same data the account and refresh chain survive.
func TestServeDevRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	rs := startServe(t, nil, "--dev", "--data", data)
	if !strings.Contains(rs.logs.String(), "DEVELOPMENT MODE") {
		t.Errorf("no development-mode warning:\n%s", rs.logs.String())
	}
	for _, f := range []string{"hallpass.db", "keys/ring.json", "keys/local.json"} {
		st, err := os.Stat(filepath.Join(data, f))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "Carol")
	if d.me(t) != "Carol" {
		t.Fatal("wrong username")
	}
	d.refresh(t)
	rs.stop(t)

	// Same address (the port is free again after the graceful shutdown).
	rs = startServe(t, nil, "--dev", "--data", data, "--listen", strings.TrimPrefix(rs.url, "http://"))
	if d.me(t) != "Carol" {
		t.Fatal("wrong username after restart")
	}
	d.refresh(t)
	d.me(t)
	logs := rs.logs.String()
	if strings.Contains(logs, d.access[10:40]) || strings.Contains(logs, d.rt[10:40]) {
		t.Fatal("a token reached the log")
	}
}

// TestServeRefusesUnprotectedKeys: without --dev the server needs a ring
// protected by a passphrase or wrapping key, and refuses a plaintext one.
func TestServeRefusesUnprotectedKeys(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	if err := serveErr(t, nil, "--data", data); !errors.Is(err, errUsage) {
		t.Fatalf("no protection: %v", err)
	}
	if err := serveErr(t, nil, "--data", data, "--insecure-plaintext"); !errors.Is(err, errUsage) {
		t.Fatalf("--insecure-plaintext without --dev: %v", err)
	}
	wrap := filepath.Join(t.TempDir(), "wrap.key")
	if err := os.WriteFile(wrap, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := serveErr(t, nil, "--data", data, "--wrap-key-file", wrap); err == nil || !strings.Contains(err.Error(), "no key ring") {
		t.Fatalf("missing ring: %v", err)
	}
	// A plaintext ring made by --dev is refused without --dev.
	rs := startServe(t, nil, "--dev", "--data", data)
	rs.stop(t)
	if err := serveErr(t, nil, "--data", data, "--wrap-key-file", wrap); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("plaintext ring: %v", err)
	}
}

// TestServeProtectedRingEnv: a ring made by `keys init --wrap-key-file`
// serves without --dev; settings come from HALLPASS_* variables.
func TestServeProtectedRingEnv(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	wrap := filepath.Join(t.TempDir(), "wrap.key")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keys", "new-wrap-key"}, &env{stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrap, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	keysDir := filepath.Join(data, "keys")
	if err := run(context.Background(), []string{"keys", "init", "--dir", keysDir, "--wrap-key-file", wrap}, &env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}); err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{
		"HALLPASS_DATA":          data,
		"HALLPASS_WRAP_KEY_FILE": wrap,
		"HALLPASS_ACCESS_TTL":    "5m",
		"HALLPASS_LOG_LEVEL":     "warn",
	}
	rs := startServe(t, environ)
	d := newHTTPDevice(t, rs.url, nil)
	st, m := d.do(t, "POST", "/v1/accounts", "application/json", `{"username":"dave"}`, "")
	if st != 201 || m["expires_in"].(float64) > 300 || m["expires_in"].(float64) < 298 {
		t.Fatalf("signup: %d %v", st, m)
	}
	if strings.Contains(rs.logs.String(), `"level":"INFO"`) {
		t.Error("HALLPASS_LOG_LEVEL=warn not applied")
	}
}

// TestServeFlags: the variable is the default, the flag wins; malformed
// values are usage errors.
func TestServeFlags(t *testing.T) {
	e := &env{stderr: io.Discard, getenv: func(k string) string {
		return map[string]string{
			"HALLPASS_LISTEN":              "127.0.0.1:9999",
			"HALLPASS_REFRESH_GRACE":       "10s",
			"HALLPASS_SIGNUP_LIMIT_PER_IP": "5/m",
			"HALLPASS_DEV":                 "true",
		}[k]
	}}
	c, err := parseServeFlags([]string{"--refresh-grace", "20s"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:9999" || c.refreshGrace != 20*time.Second || c.limitPerIP != "5/m" || !c.dev || c.data != "./data" || c.limitGlobal != "1000/h" {
		t.Fatalf("%+v", c)
	}
	bad := &env{stderr: io.Discard, getenv: func(k string) string {
		if k == "HALLPASS_ACCESS_TTL" {
			return "ten minutes"
		}
		return ""
	}}
	if _, err := parseServeFlags(nil, bad); !errors.Is(err, errUsage) {
		t.Fatalf("bad duration: %v", err)
	}
	if _, err := parseServeFlags([]string{"extra"}, e); !errors.Is(err, errUsage) {
		t.Fatalf("extra argument: %v", err)
	}
	for _, tc := range []struct {
		in   string
		want ratelimit.Rule
		ok   bool
	}{
		{"30/h", ratelimit.Rule{Limit: 30, Per: time.Hour}, true},
		{"off", ratelimit.Disabled, true},
		{"0", ratelimit.Rule{}, false},
		{"lots", ratelimit.Rule{}, false},
	} {
		r, err := parseRule(tc.in, "--x")
		if (err == nil) != tc.ok || r != tc.want {
			t.Errorf("parseRule(%q) = %v, %v", tc.in, r, err)
		}
	}
	if _, err := parseCIDRs("10.0.0.0/8, 192.168.1.1 ,::1"); err != nil {
		t.Fatal(err)
	}
	if _, err := parseCIDRs("10.0.0.0/33"); err == nil {
		t.Fatal("bad CIDR accepted")
	}
	// An IPv4-mapped prefix is the IPv4 prefix it spells: kept mapped, it
	// matched no peer of the gateway or the connection cap (both compare
	// unmapped addresses).
	if got, err := parseCIDRs("::ffff:10.0.0.0/104, ::ffff:192.0.2.7"); err != nil ||
		len(got) != 2 || got[0] != netip.MustParsePrefix("10.0.0.0/8") || got[1] != netip.MustParsePrefix("192.0.2.7/32") {
		t.Fatalf("parseCIDRs of mapped prefixes = %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:8443":      "http://127.0.0.1:8443",
		"[::1]:8080":     "http://[::1]:8080",
	} {
		if got := defaultPublicURL(in, false); got != want {
			t.Errorf("defaultPublicURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServeStoreURLs: the accepted --store forms; errors never echo the URL
// (it may hold a password).
func TestServeStoreURLs(t *testing.T) {
	for _, tc := range []struct {
		url, kind string
	}{
		{"redis://:secretpw@127.0.0.1:6390/2", "redis"},
		{"rediss://user:secretpw@redis.example:6380/0", "redis"},
		{"redis+sentinel://:secretpw@10.0.0.1:26379/0?master_name=main&addr=10.0.0.2:26379", "redis-sentinel"},
		{"redis+cluster://:secretpw@10.0.0.1:7000?addr=10.0.0.2:7000", "redis-cluster"},
		{"rediss+cluster://:secretpw@10.0.0.1:7000", "redis-cluster"},
	} {
		c, kind, err := redisClient(tc.url)
		if err != nil || kind != tc.kind {
			t.Errorf("%s: %v %v", tc.kind, kind, err)
			continue
		}
		c.Close()
	}
	for _, bad := range []string{
		"redis+sentinel://:secretpw@10.0.0.1:26379/0", // no master_name
		// Reads from replicas.
		"redis+sentinel://:secretpw@10.0.0.1:26379/0?master_name=m&replica_only=true",
		"redis+sentinel://:secretpw@10.0.0.1:26379/0?master_name=m&use_disconnected_replicas=true",
		"redis+sentinel://:secretpw@10.0.0.1:26379/0?master_name=m&route_by_latency=true",
		"redis+sentinel://:secretpw@10.0.0.1:26379/0?master_name=m&route_randomly=true",
		"redis+cluster://:secretpw@10.0.0.1:7000?read_only=true",
		"redis://:secretpw@127.0.0.1:6390/notadb",
		"redis+ring://:secretpw@h:1",
		"mysql://secretpw@h/db",
		"secretpw",
	} {
		_, _, err := redisClient(bad)
		if err == nil {
			t.Errorf("accepted a bad URL: %s", bad)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("error echoes the URL: %v", err)
		}
	}
}

// TestServeRedis: the Redis store, replay cache and limiter, with a store
// that does not answer at start-up (not fatal) and recovers.
func TestServeRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs := startServe(t, nil, "--dev", "--data", t.TempDir(), "--store", srv.URL(), "--signup-limit-per-ip", "2/h")
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "erin")
	d.refresh(t)
	if d.me(t) != "erin" {
		t.Fatal("wrong username")
	}
	d2 := newHTTPDevice(t, rs.url, nil)
	d2.signup(t, "frank")
	st, m := newHTTPDevice(t, rs.url, nil).do(t, "POST", "/v1/accounts", "application/json", `{"username":"gina"}`, "")
	if st != 429 || m["code"] != "rate_limited" {
		t.Fatalf("3rd signup: %d %v", st, m)
	}
}

// TestServeTLS: TLS 1.2 is the minimum.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	rs := startServe(t, nil, "--dev", "--data", dir, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(rs.url, "https://127.0.0.1:") {
		t.Fatalf("public URL %s", rs.url)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	d := newHTTPDevice(t, rs.url, client)
	d.signup(t, "hank")
	d.me(t)
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if res, err := old.Get(rs.url + "/healthz"); err == nil {
		res.Body.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	if err := serveErr(t, nil, "--dev", "--data", dir, "--tls-cert", certFile); !errors.Is(err, errUsage) {
		t.Fatalf("--tls-cert without --tls-key: %v", err)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func TestServeAccountCacheFlag(t *testing.T) {
	t.Parallel()
	if err := serveErr(t, nil, "--dev", "--data", t.TempDir(), "--account-cache", "-1"); !errors.Is(err, errUsage) {
		t.Fatalf("--account-cache -1: %v", err)
	}
	tests := []struct {
		name  string
		url   string
		flag  int
		views int
	}{
		{"one node", "redis://127.0.0.1:1", 1000, 1000},
		{"one node, off", "rediss://127.0.0.1:1", 0, 0},
		{"sentinel", "redis+sentinel://127.0.0.1:1?master_name=m", 1000, 1000},
		{"sentinel, off", "redis+sentinel://127.0.0.1:1?master_name=m", 0, 0},
		{"cluster", "redis+cluster://127.0.0.1:1", 1000, 1000},
		{"cluster, off", "redis+cluster://127.0.0.1:1", 0, 0},
	}
	for _, tt := range tests {
		r, err := parseRedisStore(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		r.client.Close()
		o := storeOptions(r.kind, r.failover, tt.flag)
		if o.ViewCache != tt.views {
			t.Errorf("%s: ViewCache %d, want %d", tt.name, o.ViewCache, tt.views)
		}
		if (o.ViewCacheSentinel != nil) != (r.kind == "redis-sentinel" && tt.views > 0) {
			t.Errorf("%s: ViewCacheSentinel %v", tt.name, o.ViewCacheSentinel)
		}
	}
}
