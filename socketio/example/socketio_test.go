package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/boltstore"
	"github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

// These tests drive the example server with the real socket.io-client from
// npm (testdata/client.mjs). Tokens and proofs are minted here, in Go; the
// Node script only does the socket.io transport and prints what it sees.

const (
	testIssuer   = "https://id.example.com"
	testAudience = "chat.example.com"
)

// The Node side lives in testdata: `make test-deps` (scripts/ensure-node.sh)
// installs node and runs npm ci there, and copies package-lock.json to
// installStamp once the install succeeded. The test installs nothing itself.
const (
	clientDir    = "testdata"
	installStamp = "node_modules/.hallpass-package-lock.json"
)

// installed returns the absolute path of the installed client. It fails
// the test, never skips it, when node or socket.io-client is missing or was
// installed from another package-lock.json.
func installed(t *testing.T) string {
	t.Helper()
	const fix = "run `make test-deps` at the repository root (scripts/ensure-node.sh runs npm ci in socketio/example/testdata)"
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: %s", fix)
	}
	dir, err := filepath.Abs(clientDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client", "package.json")); err != nil {
		t.Fatalf("socket.io-client is not installed in %s/node_modules: %s", clientDir, fix)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	stamp, err := os.ReadFile(filepath.Join(dir, installStamp))
	if err != nil || !bytes.Equal(stamp, lock) {
		t.Fatalf("%s/node_modules was not installed from the current package-lock.json: %s", clientDir, fix)
	}
	return dir
}

// fixture is a running example server, over TLS, following the key set of
// a test issuer over HTTPS, with a revocation store beside it.
type fixture struct {
	url    string // public URL, https://127.0.0.1:port
	pki    *pki
	issuer *keyServer
	keys   *remotekeys.KeySet
	store  revocation.Store
	app    *app
}

// fixtureOpts vary the fixture: the revocation store (bolt, or a real
// Redis), the mirror's MaxStaleness and the guard's StaleGrace.
type fixtureOpts struct {
	redis        *redistest.Server
	maxStaleness time.Duration
	staleGrace   time.Duration
	// fastPing: the server pings every second and drops a client that has
	// not answered within 3 s (socket.io's defaults: 25 s and 20 s).
	fastPing bool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, fixtureOpts{})
}

func newFixtureWith(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{pki: newPKI(t)}
	f.issuer = newKeyServer(t, f.pki)
	f.store = openTestStore(t, o.redis)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := f.pki.client()
	t.Cleanup(client.CloseIdleConnections)
	ks, err := remotekeys.New(ctx, remotekeys.Config{
		Issuer: testIssuer, URL: f.issuer.url, Client: client,
		MinRefresh: 100 * time.Millisecond, MaxRefresh: 200 * time.Millisecond, Cooldown: 10 * time.Millisecond, MaxStale: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	f.keys = ks
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.url = "https://" + ln.Addr().String()
	// A client whose close the server misses (it left mid-upgrade, or was
	// killed) is dropped within 25 s rather than 45 s, inside
	// waitForgotten's 30 s; a live client has socket.io's 20 s to answer a
	// ping however loaded the machine.
	ping, pingTimeout := 5*time.Second, 20*time.Second
	if o.fastPing {
		ping, pingTimeout = time.Second, 3*time.Second
	}
	a, err := newApp(ctx, config{
		Keys: ks, Issuer: testIssuer, Audience: testAudience, PublicURL: f.url,
		Store: f.store, MaxStaleness: o.maxStaleness, Recheck: 100 * time.Millisecond, StaleGrace: o.staleGrace,
		PingInterval: ping, PingTimeout: pingTimeout,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	f.app = a
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(sctx, tls.NewListener(ln, f.pki.server), a.Handler(), slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		a.Close()
		stop()
		<-done
	})
	return f
}

// openTestStore opens the revocation store: bolt in a temporary directory,
// or the Redis server given.
func openTestStore(t *testing.T, rs *redistest.Server) revocation.Store {
	t.Helper()
	if rs == nil {
		store, err := boltstore.Open(filepath.Join(t.TempDir(), "revocation.db"), boltstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		return store
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	store, err := redisstore.New(rc, redisstore.Options{OpTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// device is a client device: its DPoP key and ids.
type device struct {
	account, id string
	key         ed25519.PrivateKey
}

func newDevice(t *testing.T, account, id string) device {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return device{account: account, id: id, key: k}
}

// mint returns a token for d issued at iat (lifetime 10 minutes), signed
// with the issuer's current key.
func (f *fixture) mint(t *testing.T, d device, iat time.Time) string {
	t.Helper()
	return f.mintWith(t, f.issuer.ring.Current(), d, iat)
}

// mintWith is mint with a given signing key.
func (f *fixture) mintWith(t *testing.T, signer *keys.SecretKey, d device, iat time.Time) string {
	t.Helper()
	jkt, err := dpop.Thumbprint(d.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(token.Config{Issuer: testIssuer, Audience: testAudience, Now: func() time.Time { return iat }})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := m.Mint(signer, token.Subject{Account: d.account, Device: d.id, JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// proof is a handshake proof for tok, signed with key.
func (f *fixture) proof(t *testing.T, key ed25519.PrivateKey, tok string) string {
	t.Helper()
	p, err := dpop.NewProof(key, "GET", f.url+socketPath, tok, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// revokeDevice adds a device revocation to the store and waits until the
// server's mirror has it.
func (f *fixture) revokeDevice(t *testing.T, d device, tok string) {
	t.Helper()
	e, err := revocation.NewEntry(revocation.KindDevice, d.id, "test", time.Now(), revocation.EntryTTL(revocation.DefaultMaxAccessLifetime, revocation.DefaultLeeway))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Add(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	f2, _ := token.UnsafeParseFooterKid(tok)
	c := &token.Claims{Subject: d.account, Device: d.id, IssuedAt: time.Now().Add(-time.Minute), Expiry: time.Now().Add(time.Minute), ID: "probe"}
	deadline := time.Now().Add(5 * time.Second)
	for f.app.mirror.CheckRevoked(context.Background(), f2.Kid, c) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the mirror did not see the device revocation within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// event is one line printed by client.mjs.
type event struct {
	Event     string          `json:"event"`
	Message   string          `json:"message"`
	Reason    string          `json:"reason"`
	Transport string          `json:"transport"`
	Data      json.RawMessage `json:"data"`
	at        time.Time
}

// client is a running client.mjs.
type client struct {
	t      *testing.T
	events chan event
	done   chan error
	kill   func() // SIGKILL: the client leaves without a word
	cmd    *exec.Cmd
}

// runClient starts client.mjs against f with the given auth. Node trusts
// the test CA (NODE_EXTRA_CA_CERTS) and verifies the server's certificate.
func (f *fixture) runClient(t *testing.T, tok, proof, transports string) *client {
	t.Helper()
	return f.runClientCA(t, tok, proof, transports, f.pki.caFile)
}

// runClientCA is runClient trusting caFile (none when empty).
func (f *fixture) runClientCA(t *testing.T, tok, proof, transports, caFile string) *client {
	t.Helper()
	dir := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cmd := exec.CommandContext(ctx, "node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = nodeEnv(caFile,
		"HP_URL="+f.url, "HP_PATH="+socketPath, "HP_TOKEN="+tok, "HP_PROOF="+proof,
		"HP_TRANSPORTS="+transports, "HP_TIMEOUT_MS=15000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// Closing stdin asks the client to leave (see client.mjs).
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &client{t: t, events: make(chan event, 16), done: make(chan error, 1), kill: cancel, cmd: cmd}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Logf("node: %s", sc.Text())
				continue
			}
			e.at = time.Now()
			c.events <- e
		}
		close(c.events)
		err := cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			t.Logf("node stderr: %s", stderr.String())
		}
		c.done <- err
	}()
	// The client leaves as a real one does, with a disconnect packet: a
	// killed polling client is noticed only at the server's ping timeout
	// (25 s in the fixture), later than a close.
	// It is killed only if it has not left within 10 s (a loaded machine
	// running -race is slow), and the log says so: the server then sees
	// the socket go only at its ping timeout.
	t.Cleanup(func() {
		defer cancel()
		_ = stdin.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Logf("node client did not leave within 10s: killed")
			cancel()
			<-c.done
		}
	})
	return c
}

// nodeEnv is this process's environment for node, with caFile as its only
// extra CA (none when empty) and any setting that would weaken certificate
// checks dropped, then extra.
func nodeEnv(caFile string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NODE_EXTRA_CA_CERTS=") || strings.HasPrefix(kv, "NODE_TLS_REJECT_UNAUTHORIZED=") ||
			strings.HasPrefix(kv, "NODE_OPTIONS=") || strings.HasPrefix(kv, "HP_") {
			continue
		}
		env = append(env, kv)
	}
	if caFile != "" {
		env = append(env, "NODE_EXTRA_CA_CERTS="+caFile)
	}
	return append(env, extra...)
}

// next returns the next event, failing the test after 15 s or at the end
// of the output.
func (c *client) next() event {
	c.t.Helper()
	select {
	case e, ok := <-c.events:
		if !ok {
			c.t.Fatal("client exited without the expected event")
		}
		return e
	case <-time.After(15 * time.Second):
		c.t.Fatal("no event from the client within 15s")
	}
	return event{}
}

// expect returns the next event and fails unless it is named name.
func (c *client) expect(name string) event {
	c.t.Helper()
	e := c.next()
	if e.Event != name {
		c.t.Fatalf("client saw %q (%+v), want %q", e.Event, e, name)
	}
	return e
}

// connected waits for connect and whoami, and checks the identity.
func (c *client) connected(d device) {
	c.t.Helper()
	c.expect("connect")
	e := c.expect("whoami")
	var who struct{ Account, Device string }
	if err := json.Unmarshal(e.Data, &who); err != nil {
		c.t.Fatalf("whoami %s: %v", e.Data, err)
	}
	if who.Account != d.account || who.Device != d.id {
		c.t.Fatalf("whoami = %+v, want %s/%s", who, d.account, d.id)
	}
}

// kicked waits for the reason event then the disconnect, and returns when
// the reason arrived.
func (c *client) kicked(reason string) time.Time {
	c.t.Helper()
	e := c.expect("hallpass:disconnect")
	var got struct{ Reason string }
	if err := json.Unmarshal(e.Data, &got); err != nil || got.Reason != reason {
		c.t.Fatalf("hallpass:disconnect %s, want reason %q", e.Data, reason)
	}
	d := c.expect("disconnect")
	if d.Reason != "io server disconnect" {
		c.t.Fatalf("disconnect reason %q, want io server disconnect", d.Reason)
	}
	return e.at
}

func TestHandshake(t *testing.T) {
	f := newFixture(t)
	alice := newDevice(t, "acc_alice", "dev_alice")
	now := time.Now().Add(-2 * time.Second) // before any revocation below

	t.Run("accepted", func(t *testing.T) {
		for _, tr := range []string{"polling,websocket", "websocket"} {
			t.Run(tr, func(t *testing.T) {
				tok := f.mint(t, alice, now)
				c := f.runClient(t, tok, f.proof(t, alice.key, tok), tr)
				c.connected(alice)
			})
		}
	})

	refused := []struct {
		name string
		auth func(t *testing.T) (tok, proof string)
		code string
	}{
		{"no token", func(t *testing.T) (string, string) { return "", "x" }, "invalid_token"},
		{"no proof", func(t *testing.T) (string, string) { return f.mint(t, alice, now), "" }, "invalid_dpop_proof"},
		{"garbage token", func(t *testing.T) (string, string) {
			return "v4.public.nope", f.proof(t, alice.key, "v4.public.nope")
		}, "invalid_token"},
		{"expired", func(t *testing.T) (string, string) {
			tok := f.mint(t, alice, time.Now().Add(-time.Hour))
			return tok, f.proof(t, alice.key, tok)
		}, "token_expired"},
		{"unbound (proof from another key)", func(t *testing.T) (string, string) {
			tok := f.mint(t, alice, now)
			mallory := newDevice(t, "acc_mallory", "dev_mallory")
			return tok, f.proof(t, mallory.key, tok)
		}, "invalid_dpop_proof"},
		{"proof for another URL", func(t *testing.T) (string, string) {
			tok := f.mint(t, alice, now)
			p, err := dpop.NewProof(alice.key, "GET", f.url+"/other/", tok, "")
			if err != nil {
				t.Fatal(err)
			}
			return tok, p
		}, "invalid_dpop_proof"},
		{"revoked", func(t *testing.T) (string, string) {
			bob := newDevice(t, "acc_bob", "dev_bob")
			tok := f.mint(t, bob, now)
			f.revokeDevice(t, bob, tok)
			return tok, f.proof(t, bob.key, tok)
		}, "token_revoked"},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			tok, proof := tc.auth(t)
			c := f.runClient(t, tok, proof, "polling,websocket")
			e := c.expect("connect_error")
			if e.Message != tc.code {
				t.Fatalf("connect_error %q, want %q", e.Message, tc.code)
			}
			var data struct{ Code string }
			if err := json.Unmarshal(e.Data, &data); err != nil || data.Code != tc.code {
				t.Fatalf("connect_error data %s, want code %q", e.Data, tc.code)
			}
		})
	}

	// The server's certificate is checked: a client that does not trust
	// the test CA never gets to the handshake.
	t.Run("refused/untrusted certificate", func(t *testing.T) {
		for _, tr := range []string{"polling", "websocket"} {
			t.Run(tr, func(t *testing.T) {
				tok := f.mint(t, alice, now)
				e := f.runClientCA(t, tok, f.proof(t, alice.key, tok), tr, "").expect("connect_error")
				if strings.Contains(e.Message, "_") {
					t.Fatalf("connect_error %q: the server answered, want a TLS failure", e.Message)
				}
			})
		}
	})

	t.Run("replayed proof", func(t *testing.T) {
		tok := f.mint(t, alice, now)
		p := f.proof(t, alice.key, tok)
		f.runClient(t, tok, p, "websocket").connected(alice)
		e := f.runClient(t, tok, p, "websocket").expect("connect_error")
		if e.Message != "invalid_dpop_proof" {
			t.Fatalf("replay: connect_error %q, want invalid_dpop_proof", e.Message)
		}
	})

	// Every client above has exited: the guard forgot their sockets.
	f.waitForgotten(t)
}

// waitForgotten fails t unless the guard watches no socket within 30 s: a
// loaded machine running -race is slow to see the last client leave, and
// a client whose close the server missed goes at the fixture's ping
// timeout (25 s; 4 s with fastPing).
func (f *fixture) waitForgotten(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for f.app.guard.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("guard still watches %d sockets after their clients left (server: %d sockets in /, %d engine.io connections)",
				f.app.guard.Len(), f.app.io.Sockets().Sockets().Len(), f.app.io.Engine().ClientsCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A client that goes silent with its connections still open (a phone
// that lost its network; here a stopped process) is dropped by the server
// at its ping timeout, and the guard forgets it; one that dies (its
// connections closed by the kernel) is forgotten at once.
func TestVanishedClientForgotten(t *testing.T) {
	for _, how := range []string{"silent", "killed"} {
		for _, tr := range []string{"polling", "websocket"} {
			t.Run(how+"/"+tr, func(t *testing.T) {
				f := newFixtureWith(t, fixtureOpts{fastPing: true})
				erin := newDevice(t, "acc_erin", "dev_erin")
				tok := f.mint(t, erin, time.Now().Add(-2*time.Second))
				c := f.runClient(t, tok, f.proof(t, erin.key, tok), tr)
				c.connected(erin)
				if n := f.app.guard.Len(); n != 1 {
					t.Fatalf("guard watches %d sockets, want 1", n)
				}
				if how == "silent" {
					if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
						t.Fatal(err)
					}
				}
				defer c.kill() // a stopped process still dies of SIGKILL
				if how == "killed" {
					c.kill()
				}
				f.waitForgotten(t)
			})
		}
	}
}

func TestKickedAfterRevocation(t *testing.T) {
	f := newFixture(t)
	carol := newDevice(t, "acc_carol", "dev_carol")
	dave := newDevice(t, "acc_carol", "dev_dave") // same account, another device
	iat := time.Now().Add(-2 * time.Second)
	tc := f.mint(t, carol, iat)
	c := f.runClient(t, tc, f.proof(t, carol.key, tc), "polling,websocket")
	c.connected(carol)
	td := f.mint(t, dave, iat)
	d := f.runClient(t, td, f.proof(t, dave.key, td), "websocket")
	d.connected(dave)

	start := time.Now()
	f.revokeDevice(t, carol, tc)
	at := c.kicked("token_revoked")
	t.Logf("revocation to reason event: %v", at.Sub(start).Round(time.Millisecond))

	// The other device stays connected through a few re-checks.
	select {
	case e := <-d.events:
		t.Fatalf("bystander device saw %+v", e)
	case <-time.After(500 * time.Millisecond):
	}
	if n := f.app.guard.Len(); n != 1 {
		t.Fatalf("guard watches %d sockets, want 1", n)
	}
}

func TestKickedAtExpiry(t *testing.T) {
	f := newFixture(t)
	erin := newDevice(t, "acc_erin", "dev_erin")
	// Issued so that exp is 3 to 4 s away: time enough to connect under -race.
	tok := f.mint(t, erin, time.Now().Truncate(time.Second).Add(-token.DefaultTTL+4*time.Second))
	c := f.runClient(t, tok, f.proof(t, erin.key, tok), "polling,websocket")
	c.connected(erin)
	c.kicked("token_expired")
}
