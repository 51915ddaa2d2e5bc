package gateway_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/gateway"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// wsUpstream is a WebSocket echo server; closed counts the connections
// whose upstream side has ended.
func wsUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	closed := new(atomic.Int64)
	s := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) {
		defer closed.Add(1)
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(ws, "echo:"+msg+":"+ws.Request().Header.Get(gateway.HeaderDevice)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s, closed
}

// startWSGateway runs a gateway in front of a WebSocket echo upstream.
func startWSGateway(t *testing.T, cfg gateway.Config) (gw *httptest.Server, w *world, upstreamClosed *atomic.Int64) {
	t.Helper()
	up, closed := wsUpstream(t)
	gw = httptest.NewUnstartedServer(nil)
	gw.Start()
	t.Cleanup(gw.Close)
	w = newWorld(t, gw.URL)
	cfg.PublicURL = gw.URL
	cfg.Upstream, _ = url.Parse(up.URL)
	g, err := gateway.New(w.auth, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g
	return gw, w, closed
}

// dialWS opens a WebSocket through the gateway with d's token and a proof
// for GET <gateway>/ws.
func dialWS(t *testing.T, gw *httptest.Server, d *device) (*websocket.Conn, error) {
	t.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(gw.URL, "http")+"/ws", gw.URL)
	if err != nil {
		t.Fatal(err)
	}
	d.sign(t, cfg.Header, http.MethodGet, gw.URL+"/ws")
	return websocket.DialConfig(cfg)
}

// deviceExp is w.device, with the token's expiry.
func (w *world) deviceExp(t *testing.T, account, dev string) (*device, time.Time) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	tok, c, err := w.minter.Mint(w.sk, token.Subject{Account: account, Device: dev, JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	return &device{key: priv, token: tok}, c.Expiry
}

func echo(t *testing.T, ws *websocket.Conn, msg string) string {
	t.Helper()
	if err := websocket.Message.Send(ws, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil {
		t.Fatalf("receive: %v", err)
	}
	return got
}

// waitClosed waits until the gateway has closed ws: a read fails.
func waitClosed(t *testing.T, ws *websocket.Conn, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = ws.SetReadDeadline(start.Add(within))
	var msg string
	err := websocket.Message.Receive(ws, &msg)
	if err == nil {
		t.Fatalf("received %q, want the connection closed", msg)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %v", within)
	}
	return time.Since(start)
}

func waitCount(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("upstream connections closed: %d, want %d", n.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebSocketClosedAtExpiry is the regression test of issue 11, finding
// 9 (the gateway never re-checked a proxied WebSocket after the upgrade).
// Reproduction: open a WebSocket through `hallpass gateway` with a token,
// let the token expire (or revoke the device): the connection stayed open
// and kept carrying the device's traffic for as long as it lived. Now it is
// closed, both ways, at the token's expiry.
func TestWebSocketClosedAtExpiry(t *testing.T) {
	t.Parallel()
	// The gateway's clock runs ahead of the verifier's (real) one so that
	// the token has `left` to live by it.
	const left = 500 * time.Millisecond
	var offset atomic.Int64
	gw, w, upClosed := startWSGateway(t, gateway.Config{
		Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
	})
	alice, exp := w.deviceExp(t, "acct_alice", "dev_alice")
	offset.Store(int64(time.Until(exp) - left))
	ws, err := dialWS(t, gw, alice)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	opened := time.Now()
	if got := echo(t, ws, "hi"); got != "echo:hi:dev_alice" {
		t.Fatalf("echo %q", got)
	}
	waitClosed(t, ws, 5*time.Second)
	if d := time.Since(opened); d < left-100*time.Millisecond || d > left+2*time.Second {
		t.Fatalf("closed %v after opening, want about %v", d, left)
	}
	waitCount(t, upClosed, 1)

	// A token that has expired by the gateway's clock, but is still inside
	// the verifier's leeway, gets no connection at all.
	bob, exp := w.deviceExp(t, "acct_bob", "dev_bob")
	offset.Store(int64(time.Until(exp) + time.Second))
	if _, err := dialWS(t, gw, bob); err == nil {
		t.Fatal("a WebSocket was opened with an expired token")
	}
}

// TestWebSocketClosedAtRevocation: a revocation the checker learns of
// closes the live connection within RecheckEvery; another device's stays.
func TestWebSocketClosedAtRevocation(t *testing.T) {
	t.Parallel()
	gw := httptest.NewUnstartedServer(nil)
	gw.Start()
	t.Cleanup(gw.Close)
	up, upClosed := wsUpstream(t)
	w := newWorld(t, gw.URL)
	u, _ := url.Parse(up.URL)
	g, err := gateway.New(w.auth, gateway.Config{
		PublicURL: gw.URL, Upstream: u, Revocation: w.deny, RecheckEvery: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g

	alice, bob := w.device(t, "acct_alice", "dev_alice"), w.device(t, "acct_bob", "dev_bob")
	wsA, err := dialWS(t, gw, alice)
	if err != nil {
		t.Fatal(err)
	}
	defer wsA.Close()
	wsB, err := dialWS(t, gw, bob)
	if err != nil {
		t.Fatal(err)
	}
	defer wsB.Close()
	echo(t, wsA, "a")
	echo(t, wsB, "b")

	w.deny.revoke("dev_alice")
	if d := waitClosed(t, wsA, 5*time.Second); d > time.Second {
		t.Fatalf("revoked connection closed after %v", d)
	}
	waitCount(t, upClosed, 1)
	if got := echo(t, wsB, "still"); got != "echo:still:dev_bob" {
		t.Fatalf("the other device's connection: %q", got)
	}
	// A revoked device cannot open a new one.
	if _, err := dialWS(t, gw, alice); err == nil {
		t.Fatal("a revoked device opened a WebSocket")
	}
}

// keyState is a KeyChecker whose answer the test sets: nil vouches for
// every key.
type keyState struct{ err atomic.Pointer[error] }

func (k *keyState) LookupKey(context.Context, keys.KeyID) (keys.PublicKey, error) {
	if e := k.err.Load(); e != nil {
		return keys.PublicKey{}, *e
	}
	return keys.PublicKey{}, nil
}

// TestWebSocketClosedAtKeyRevocation: a signing key that the key set lists
// as revoked (or can no longer vouch for) after the handshake closes the
// live connection within RecheckEvery, without any revocation checker: a
// key revoked offline (`hallpass keys revoke`) writes no revocation entry,
// and the connection stayed open until its token expired.
func TestWebSocketClosedAtKeyRevocation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		reason string
	}{
		{"revoked", fmt.Errorf("remotekeys: %w", verifier.ErrKeyRevoked), "reason=token_revoked"},
		{"not vouched for", errors.New("remotekeys: key set stale"), "reason=unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log logbuf.Buffer
			ks := new(keyState)
			gw, w, upClosed := startWSGateway(t, gateway.Config{
				Keys: ks, RecheckEvery: 20 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&log, nil)),
			})
			ws, err := dialWS(t, gw, w.device(t, "acct_alice", "dev_alice"))
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			echo(t, ws, "a")
			ks.err.Store(&tc.err)
			if d := waitClosed(t, ws, 5*time.Second); d > time.Second {
				t.Fatalf("closed after %v", d)
			}
			waitCount(t, upClosed, 1)
			if !strings.Contains(log.String(), tc.reason) {
				t.Fatalf("log %q, want %s", log.String(), tc.reason)
			}
			// Nor can a new one be opened.
			if _, err := dialWS(t, gw, w.device(t, "acct_bob", "dev_bob")); err == nil {
				t.Fatal("a WebSocket was opened with a key the set refuses")
			}
		})
	}
}

// TestWebSocketClosedWhenClockSteps: the expiry timer runs on the monotonic
// clock from the handshake; a gateway clock that steps past the token's
// exp afterwards (NTP, a resumed VM) closes the connection at the next
// re-check, with or without a revocation checker.
func TestWebSocketClosedWhenClockSteps(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	var log logbuf.Buffer
	gw, w, upClosed := startWSGateway(t, gateway.Config{
		RecheckEvery: 20 * time.Millisecond,
		Now:          func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
		Logger:       slog.New(slog.NewTextHandler(&log, nil)),
	})
	alice, exp := w.deviceExp(t, "acct_alice", "dev_alice")
	ws, err := dialWS(t, gw, alice)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	echo(t, ws, "a")
	offset.Store(int64(time.Until(exp) + time.Minute))
	if d := waitClosed(t, ws, 5*time.Second); d > time.Second {
		t.Fatalf("closed after %v", d)
	}
	waitCount(t, upClosed, 1)
	if !strings.Contains(log.String(), "reason=token_expired") {
		t.Fatalf("log %q, want reason=token_expired", log.String())
	}
}

// TestUpgradeRefusedWithoutToken: the upgrade is verified like any other
// request.
func TestUpgradeRefusedWithoutToken(t *testing.T) {
	t.Parallel()
	gw, _, _ := startWSGateway(t, gateway.Config{})
	if _, err := websocket.Dial("ws"+strings.TrimPrefix(gw.URL, "http")+"/ws", "", gw.URL); err == nil {
		t.Fatal("an unauthenticated WebSocket was proxied")
	}
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
}

func TestRecheckEveryConfig(t *testing.T) {
	w := newWorld(t, "https://gw.example")
	if _, err := gateway.New(w.auth, gateway.Config{PublicURL: "https://gw.example", RecheckEvery: time.Millisecond}); !errors.Is(err, gateway.ErrConfig) {
		t.Fatalf("RecheckEvery 1ms: %v", err)
	}
}
