package gateway_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/gateway"
)

// TestUpstreamConnectionReuse is the regression test of issue 12, item 2:
// the proxy used a clone of Go's default transport, which keeps 2 idle
// connections per host, so that under concurrency most requests opened a
// new upstream connection and left it in TIME-WAIT (13,688 sockets after a
// 5 s run). Now the connections are kept and reused: sequential requests
// share one, and C concurrent clients need at most C.
func TestUpstreamConnectionReuse(t *testing.T) {
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
	gw, alice := proxyTo(t, up.URL)
	const clients, perClient = 16, 25
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	t.Cleanup(client.CloseIdleConnections)
	call := func() error {
		req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
		alice.sign(t, req.Header, "GET", gw.URL+"/x")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return errors.New(res.Status)
		}
		return nil
	}

	for range 50 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("50 sequential requests opened %d upstream connections, want 1", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for range clients {
		wg.Go(func() {
			for range perClient {
				if err := call(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := conns.Load(); n > clients+1 {
		t.Fatalf("%d concurrent clients x %d requests opened %d upstream connections, want at most %d", clients, perClient, n, clients+1)
	}
}

// proxyTo serves a gateway with the default transport in front of
// upstream, and returns it with a device whose token it accepts.
func proxyTo(t testing.TB, upstream string) (*httptest.Server, *device) {
	t.Helper()
	gw := httptest.NewServer(nil)
	t.Cleanup(gw.Close)
	w := newWorld(t, gw.URL)
	u, _ := url.Parse(upstream)
	g, err := gateway.New(w.auth, gateway.Config{PublicURL: gw.URL, Upstream: u})
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = g
	return gw, w.device(t, "acct_alice", "dev_alice")
}

func TestNewTransport(t *testing.T) {
	tests := []struct {
		name    string
		opts    gateway.TransportOptions
		wantErr bool
		maxIdle int
		idle    time.Duration
	}{
		{"defaults", gateway.TransportOptions{}, false, gateway.DefaultUpstreamMaxIdle, gateway.DefaultUpstreamIdleTimeout},
		{"sized", gateway.TransportOptions{MaxIdle: 64, IdleTimeout: time.Second}, false, 64, time.Second},
		{"negative size", gateway.TransportOptions{MaxIdle: -1}, true, 0, 0},
		{"negative timeout", gateway.TransportOptions{ResponseHeaderTimeout: -time.Second}, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := gateway.NewTransport(tt.opts)
			if tt.wantErr {
				if !errors.Is(err, gateway.ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.MaxIdleConnsPerHost != tt.maxIdle || tr.MaxIdleConns != tt.maxIdle || tr.IdleConnTimeout != tt.idle ||
				!tr.ForceAttemptHTTP2 || tr.DisableKeepAlives || tr.Proxy != nil || tr.ResponseHeaderTimeout <= 0 {
				t.Fatalf("transport not sized as asked: %+v", tr)
			}
		})
	}
}

// TestProxyLargeBodies: bodies larger than a copy buffer, relayed
// concurrently through the pooled buffers, arrive intact.
func TestProxyLargeBodies(t *testing.T) {
	body := make([]byte, 200<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	t.Cleanup(up.Close)
	gw, alice := proxyTo(t, up.URL)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 4 {
				req, _ := http.NewRequest("GET", gw.URL+"/big", nil)
				alice.sign(t, req.Header, "GET", gw.URL+"/big")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || !bytes.Equal(got, body) {
					t.Errorf("body of %d bytes (%v), want the upstream's %d", len(got), err, len(body))
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkProxy is one verified, proxied request over loopback (a fresh
// proof each, the token cache off), beside its baseline: the same request
// to the upstream directly.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	b.Cleanup(up.Close)
	gw, alice := proxyTo(b, up.URL)
	get := func(b *testing.B, target string, sign bool) {
		req, _ := http.NewRequest("GET", target, nil)
		if sign {
			alice.sign(b, req.Header, "GET", target)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatal(res.Status)
		}
	}
	b.Run("upstream directly", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, up.URL+"/x", false)
		}
	})
	b.Run("through the gateway", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, gw.URL+"/x", true)
		}
	})
}
