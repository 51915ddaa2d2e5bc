package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redislog"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

// TestRunFlags: bad command lines fail before anything listens.
func TestRunFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "no audience", args: []string{"--issuer", testIssuer}, want: "--audience"},
		{name: "keys file and keys url", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--keys-file", "k.json", "--keys-url", "https://id.example.com/k"}, want: "exclusive"},
		{name: "cert without key", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--tls-cert", "c.pem"}, want: "--tls-key"},
		{name: "two revocation stores", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--revocation-redis", "redis://127.0.0.1:1/0", "--revocation-db", "x.db"}, want: "exclusive"},
		{name: "stale grace without a store", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--stale-grace", "1m"}, want: "--stale-grace needs"},
		{name: "plain http keys url off loopback", args: []string{"--issuer", "http://id.example.com", "--audience", testAudience}, want: "--keys-url"},
		{name: "metrics on the socket.io listener", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--listen", "127.0.0.1:8090", "--metrics-listen", "127.0.0.1:8090"}, want: "--metrics-listen must not be"},
		{name: "metrics on the default listener", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--metrics-listen", "127.0.0.1:8090"}, want: "--metrics-listen must not be"},
		{name: "metrics listen not an address", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--metrics-listen", "9102"}, want: "--metrics-listen: want host:port or off"},
		{name: "stale grace over an hour", args: []string{"--issuer", testIssuer, "--audience", testAudience, "--keys-file", writeKeySet(t, dir),
			"--revocation-db", filepath.Join(dir, "rev.db"), "--stale-grace", "2h", "--listen", "127.0.0.1:0"}, want: "StaleGrace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := run(ctx, tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// writeKeySet writes a key set document for testIssuer and returns its path.
func writeKeySet(t *testing.T, dir string) string {
	t.Helper()
	ks := newKeyServer(t, newPKI(t))
	doc, err := json.Marshal(ks.ring.KeySet(testIssuer))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(p, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRun starts the command as a user does, with flags, and stops it:
// over TLS with the key set followed from the issuer (--keys-url, trusted
// through --keys-ca), and with a fixed --keys-file. Its log is JSON.
func TestRun(t *testing.T) {
	p := newPKI(t)
	issuer := newKeyServer(t, p)
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		scheme string
	}{
		{name: "tls and remote keys", scheme: "https", args: []string{"--tls-cert", p.certFile, "--tls-key", p.keyFile,
			"--keys-url", issuer.url, "--keys-ca", p.caFile, "--revocation-db", filepath.Join(dir, "rev1.db"), "--stale-grace", "30s", "--metrics-listen", "127.0.0.1:0"}},
		{name: "plain http and a keys file", scheme: "http", args: []string{"--keys-file", writeKeySet(t, dir), "--revocation-db", filepath.Join(dir, "rev2.db"), "--metrics-listen", "off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncLog{}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, append([]string{"--listen", "127.0.0.1:0", "--issuer", testIssuer, "--audience", testAudience}, tc.args...), logs)
			}()
			htu := logs.waitListening(t, errc, cancel)
			if !strings.HasPrefix(htu, tc.scheme+"://127.0.0.1:") {
				t.Errorf("htu %q, want %s://127.0.0.1:port/socket.io/", htu, tc.scheme)
			}
			c := p.client()
			defer c.CloseIdleConnections()
			resp, err := c.Get(htu + "?EIO=4&transport=polling")
			if err != nil {
				t.Fatalf("GET %s: %v", htu, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("engine.io open: %d", resp.StatusCode)
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if !json.Valid([]byte(l)) {
					t.Errorf("log line is not JSON: %q", l)
				}
			}
		})
	}
}

// TestRunRedisLogIsJSON: go-redis's own lines (a pool that cannot dial,
// once Redis is killed) come out of the command as JSON through slog, and
// the mirror's staleness is logged there too.
func TestRunRedisLogIsJSON(t *testing.T) {
	p := newPKI(t)
	issuer := newKeyServer(t, p)
	rs := redistest.Start(t)
	logs := &syncLog{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"--listen", "127.0.0.1:0", "--issuer", testIssuer, "--audience", testAudience,
			"--keys-url", issuer.url, "--keys-ca", p.caFile, "--revocation-redis", rs.URL(),
			"--revocation-max-staleness", "1s", "--stale-grace", "10s", "--metrics-listen", "127.0.0.1:0"}, logs)
	}()
	logs.waitListening(t, errc, cancel)
	rs.Stop(t)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"`+redislog.Message+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no go-redis line in the log within 10s of the outage:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("log line is not JSON: %q", l)
		}
	}
}

// TestRunDerivesKeysURL: without --keys-url or --keys-file, the key set is
// fetched from --issuer + the well-known path.
func TestRunDerivesKeysURL(t *testing.T) {
	f := &flags{issuer: "https://id.example.com/", audience: testAudience, metricsListen: metricsOff}
	if err := f.check(); err != nil {
		t.Fatal(err)
	}
	if want := "https://id.example.com" + remotekeys.WellKnownPath; f.keysURL != want {
		t.Fatalf("keys URL %q, want %q", f.keysURL, want)
	}
}

// syncLog collects the command's log from its goroutines.
type syncLog struct{ logbuf.Buffer }

// waitListening waits (10 s at most) for the "listening" line and returns
// its htu.
func (l *syncLog) waitListening(t *testing.T, errc <-chan error, cancel func()) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			var rec struct{ Msg, HTU string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "socket.io server listening" {
				return rec.HTU
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("run returned before listening: %v\n%s", err, l.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server not up within 10s: %v", <-errc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
