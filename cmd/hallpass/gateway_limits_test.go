package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/net/websocket"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/revocation"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

// startGatewayWith is startGatewayCmd with a hook on the parsed
// configuration (test seams such as the key set's clock).
func startGatewayWith(t *testing.T, tweak func(*gatewayConfig), args ...string) string {
	t.Helper()
	logs := &logbuf.Buffer{}
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(string) string { return "" }}
	c, err := parseGatewayFlags(append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, args...), e)
	if err != nil {
		t.Fatal(err)
	}
	tweak(c)
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
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway returned %v", err)
		}
	})
	return url
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestGatewayKeysMaxStale is the regression test of issue 11, finding 9:
// `hallpass gateway` had no bound on how long it trusted the last key set
// (remotekeys.MaxStale was unbounded and had no flag), so a gateway cut off
// from its issuer accepted tokens of a since-revoked key for ever.
// Reproduction: start the gateway, stop the issuer, let days pass: requests
// still answered 200. Now they answer 503 past --keys-max-stale (default
// 24 h).
func TestGatewayKeysMaxStale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		maxStale time.Duration
	}{
		{"default", nil, remotekeys.DefaultMaxStale},
		{"--keys-max-stale 2h", []string{"--keys-max-stale", "2h"}, 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs := startServe(t, nil, "--dev", "--data", t.TempDir())
			up := echoHeaders(t)
			clk := &fakeClock{t: time.Now()}
			gw := startGatewayWith(t, func(c *gatewayConfig) { c.keysNow = clk.Now },
				append([]string{"--keys-url", rs.url + wellKnownKeys, "--upstream", up.URL}, tt.args...)...)
			d := newHTTPDevice(t, rs.url, nil)
			d.signup(t, "stale")
			rs.stop(t) // the issuer is gone: no fetch succeeds from now on

			clk.Add(tt.maxStale - time.Minute)
			if st, _, body := d.call(t, nil, "GET", gw, "/x", nil); st != http.StatusOK {
				t.Fatalf("within the bound: %d %s", st, body)
			}
			clk.Add(2 * time.Minute)
			st, _, body := d.call(t, nil, "GET", gw, "/x", nil)
			if st != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
				t.Fatalf("past the bound: %d %s, want 503 unavailable", st, body)
			}
		})
	}
}

// TestGatewayTimeouts: a client that never finishes its headers, or its
// body, or sits idle, is disconnected after the flag's time (before this,
// only headers were bounded, at a fixed 10 s, and a slow body held the
// connection and the upstream's for ever).
func TestGatewayTimeouts(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	// The upstream reads the whole body, as most do.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(up.Close)
	gw, _ := startGatewayCmd(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL,
		"--read-header-timeout", "300ms", "--read-timeout", "600ms", "--idle-timeout", "400ms")
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "slow")
	host := strings.TrimPrefix(gw, "http://")

	// closedWithin reports whether the server closes conn within d.
	closedWithin := func(t *testing.T, conn net.Conn, d time.Duration) bool {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn) // a response, if any, then EOF
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("headers", func(t *testing.T) {
		conn := dial(t)
		_, _ = io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: "+host+"\r\n") // never ends
		if !closedWithin(t, conn, 3*time.Second) {
			t.Fatal("a request whose headers never end held its connection")
		}
	})
	t.Run("body", func(t *testing.T) {
		conn := dial(t)
		proof, err := dpop.NewProof(d.key, "POST", gw+"/x", d.access, "")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: DPoP "+d.access+
			"\r\nDPoP: "+proof+"\r\nContent-Length: 1000\r\n\r\nsome of it")
		if !closedWithin(t, conn, 3*time.Second) {
			t.Fatal("a request whose body never ends held its connection")
		}
	})
	t.Run("idle", func(t *testing.T) {
		conn := dial(t)
		_, _ = io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || res.Close {
			t.Fatalf("first response: %d close=%v", res.StatusCode, res.Close)
		}
		if !closedWithin(t, conn, 3*time.Second) {
			t.Fatal("an idle keep-alive connection stayed open")
		}
	})
}

// TestGatewayWebSocketRevoked: `hallpass gateway --store` closes a proxied
// WebSocket when the issuer's revocation of its device reaches the mirror
// (the gateway package's tests cover expiry with a clock).
func TestGatewayWebSocketRevoked(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rs := startServe(t, nil, "--dev", "--data", t.TempDir(), "--store", srv.URL())
	up := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	t.Cleanup(up.Close)
	gw, _ := startGatewayCmd(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL, "--store", srv.URL())
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "wsuser")
	ws := dialGatewayWS(t, gw, d)

	claims, _, err := unsafeClaims(d.access)
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
	waitWSClosed(t, ws, "the revoked device's WebSocket")
}

// TestGatewayWebSocketKeySetStale: without --store, a proxied WebSocket is
// closed when the key set can no longer vouch for its token's key (here:
// the issuer gone past --keys-max-stale); before, only the token's expiry
// closed it, so a key revoked offline left its connections open.
func TestGatewayWebSocketKeySetStale(t *testing.T) {
	t.Parallel()
	rs := startServe(t, nil, "--dev", "--data", t.TempDir())
	up := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	t.Cleanup(up.Close)
	clk := &fakeClock{t: time.Now()}
	gw := startGatewayWith(t, func(c *gatewayConfig) { c.keysNow = clk.Now },
		"--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL)
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "wsstale")
	ws := dialGatewayWS(t, gw, d)
	rs.stop(t)
	clk.Add(remotekeys.DefaultMaxStale + time.Minute)
	waitWSClosed(t, ws, "a WebSocket whose key the set no longer vouches for")
}

// dialGatewayWS opens a WebSocket to gw/ws with d's token and checks that
// it echoes.
func dialGatewayWS(t *testing.T, gw string, d *httpDevice) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(gw, "http")+"/ws", gw)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := dpop.NewProof(d.key, "GET", gw+"/ws", d.access, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "DPoP "+d.access)
	cfg.Header.Set("DPoP", proof)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if _, err := ws.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := ws.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("echo: %q %v", buf[:n], err)
	}
	return ws
}

// waitWSClosed fails unless ws is closed within 10 s.
func waitWSClosed(t *testing.T, ws *websocket.Conn, what string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := ws.Read(make([]byte, 16))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("%s stayed open: %v", what, err)
	}
}
