package socketauth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/socketio/socketauth"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	issuer    = "https://id.example.com"
	audience  = "chat.example.com"
	publicURL = "https://chat.example.com"
	path      = "/socket.io/"
	htu       = publicURL + path
)

type env struct {
	signer *keys.SecretKey
	device ed25519.PrivateKey
	auth   *httpauth.Authenticator
}

func newEnv(t testing.TB) *env {
	t.Helper()
	sk, err := keys.GenerateSecretKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := verifier.NewStaticKeySet(sk.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(ks, issuer, audience)
	if err != nil {
		t.Fatal(err)
	}
	a, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return &env{signer: sk, device: dk, auth: a}
}

func (e *env) mint(t *testing.T, iat time.Time) string {
	t.Helper()
	jkt, err := dpop.Thumbprint(e.device.Public())
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(token.Config{Issuer: issuer, Audience: audience, Now: func() time.Time { return iat }})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := m.Mint(e.signer, token.Subject{Account: "acc_1", Device: "dev_1", JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func proof(t *testing.T, key ed25519.PrivateKey, url, tok string) string {
	t.Helper()
	p, err := dpop.NewProof(key, "GET", url, tok, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newGuard(t *testing.T, a socketauth.Authenticator, opts socketauth.Options) *socketauth.Guard {
	t.Helper()
	g, err := socketauth.New(a, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// checker is a RevocationChecker returning err.
type checker struct {
	mu  sync.Mutex
	err error
}

func (c *checker) set(err error) { c.mu.Lock(); c.err = err; c.mu.Unlock() }
func (c *checker) CheckRevoked(context.Context, keys.KeyID, *token.Claims) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// failing is an Authenticator whose errors are not *httpauth.Error.
type failing struct{}

func (failing) Authenticate(context.Context, httpauth.Request) (*token.Claims, error) {
	return nil, errors.New("boom")
}

func TestNewConfig(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		a    socketauth.Authenticator
		path string
		opts socketauth.Options
	}{
		{name: "nil authenticator", path: path},
		{name: "relative path", a: e.auth, path: "socket.io/"},
		{name: "path with query", a: e.auth, path: "/socket.io/?EIO=4"},
		{name: "recheck too fast", a: e.auth, path: path, opts: socketauth.Options{RecheckEvery: time.Millisecond}},
		{name: "negative timeout", a: e.auth, path: path, opts: socketauth.Options{Timeout: -1}},
		{name: "negative stale grace", a: e.auth, path: path, opts: socketauth.Options{Revocation: &staleChecker{}, StaleGrace: -time.Second}},
		{name: "stale grace over an hour", a: e.auth, path: path, opts: socketauth.Options{Revocation: &staleChecker{}, StaleGrace: socketauth.MaxStaleGrace + time.Second}},
		{name: "stale grace without a revocation checker", a: e.auth, path: path, opts: socketauth.Options{StaleGrace: time.Second}},
		{name: "stale grace with a checker that hides its staleness", a: e.auth, path: path, opts: socketauth.Options{Revocation: &checker{}, StaleGrace: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := socketauth.New(tc.a, tc.path, tc.opts); !errors.Is(err, socketauth.ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	stale := &checker{err: revocation.ErrStale}
	revoked := &checker{err: revocation.ErrRevoked}
	for _, tc := range []struct {
		name string
		a    socketauth.Authenticator
		rc   socketauth.RevocationChecker
		auth func(tok string) map[string]any
		iat  time.Time
		code string
	}{
		{name: "valid", auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, e.device, htu, tok)}
		}},
		{name: "valid, engine.io query in htu", auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, e.device, htu+"?EIO=4&transport=polling", tok)}
		}},
		{name: "no auth", auth: func(string) map[string]any { return nil }, code: "invalid_token"},
		{name: "token not a string", auth: func(string) map[string]any {
			return map[string]any{"token": 42.0, "proof": "x"}
		}, code: "invalid_token"},
		{name: "no proof", auth: func(tok string) map[string]any { return map[string]any{"token": tok} }, code: "invalid_dpop_proof"},
		{name: "proof not a string", auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": []any{"x"}}
		}, code: "invalid_dpop_proof"},
		{name: "expired", iat: now.Add(-time.Hour), auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, e.device, htu, tok)}
		}, code: "token_expired"},
		{name: "proof from another key", auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, other, htu, tok)}
		}, code: "invalid_dpop_proof"},
		{name: "proof without the trailing slash", auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, e.device, publicURL+"/socket.io", tok)}
		}, code: "invalid_dpop_proof"},
		{name: "proof for POST", auth: func(tok string) map[string]any {
			p, _ := dpop.NewProof(e.device, "POST", htu, tok, "")
			return map[string]any{"token": tok, "proof": p}
		}, code: "invalid_dpop_proof"},
		{name: "proof without ath", auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, e.device, htu, "")}
		}, code: "invalid_dpop_proof"},
		{name: "revoked by the re-check's checker", rc: revoked, auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, e.device, htu, tok)}
		}, code: "token_revoked"},
		{name: "stale checker", rc: stale, auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": proof(t, e.device, htu, tok)}
		}, code: "unavailable"},
		{name: "foreign authenticator error", a: failing{}, auth: func(tok string) map[string]any {
			return map[string]any{"token": tok, "proof": "x"}
		}, code: "internal_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			if a == nil {
				a = e.auth
			}
			g := newGuard(t, a, socketauth.Options{Revocation: tc.rc})
			iat := tc.iat
			if iat.IsZero() {
				iat = now
			}
			tok := e.mint(t, iat)
			c, kid, code, _ := g.Check(tc.auth(tok))
			if code != tc.code {
				t.Fatalf("code %q, want %q", code, tc.code)
			}
			if tc.code == "" && (c == nil || c.Device != "dev_1" || kid != e.signer.ID()) {
				t.Fatalf("claims %+v kid %v", c, kid)
			}
		})
	}
}

// kicks records kick calls.
type kicks struct {
	mu      sync.Mutex
	reasons []string
	ch      chan string
}

func newKicks() *kicks { return &kicks{ch: make(chan string, 4)} }
func (k *kicks) kick(reason string) {
	k.mu.Lock()
	k.reasons = append(k.reasons, reason)
	k.mu.Unlock()
	k.ch <- reason
}

func (k *kicks) wait(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-k.ch:
		if got != want {
			t.Fatalf("kicked with %q, want %q", got, want)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("not kicked (%q) within 3s", want)
	}
}

func (k *kicks) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-k.ch:
		t.Fatalf("kicked with %q", got)
	case <-time.After(d):
	}
}

func claims(exp time.Time) *token.Claims {
	return &token.Claims{Subject: "acc_1", Device: "dev_1", IssuedAt: exp.Add(-time.Minute), Expiry: exp, ID: "j"}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	g := newGuard(t, e.auth, socketauth.Options{})
	s := socket.MakeSocket()
	k := newKicks()
	if code := g.Register(s, claims(time.Now().Add(50*time.Millisecond)), "kid", k.kick); code != "" {
		t.Fatal(code)
	}
	if c, ok := g.Claims(s); !ok || c.Device != "dev_1" {
		t.Fatalf("Claims = %+v, %v", c, ok)
	}
	k.wait(t, socketauth.ReasonTokenExpired)
	if _, ok := g.Claims(s); ok || g.Len() != 0 {
		t.Fatal("session kept after expiry")
	}
	k.none(t, 100*time.Millisecond) // once only

	// Accepted by the verifier's leeway but already past exp: refused.
	if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(-time.Second)), "kid", k.kick); code != socketauth.ReasonTokenExpired {
		t.Fatalf("register past exp: %q", code)
	}
}

func TestRecheck(t *testing.T) {
	e := newEnv(t)
	rc := &checker{}
	g := newGuard(t, e.auth, socketauth.Options{Revocation: rc, RecheckEvery: 20 * time.Millisecond})
	k := newKicks()
	if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(time.Minute)), "kid", k.kick); code != "" {
		t.Fatal(code)
	}
	k.none(t, 100*time.Millisecond)
	rc.set(revocation.ErrRevoked)
	k.wait(t, socketauth.ReasonTokenRevoked)
	if g.Len() != 0 {
		t.Fatal("session kept after revocation")
	}

	rc.set(revocation.ErrStale)
	if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(time.Minute)), "kid", k.kick); code != "" {
		t.Fatal(code)
	}
	k.wait(t, socketauth.ReasonUnavailable)
}

// staleChecker is a checker that reports its staleness: it last heard
// from its store age ago (never, when age < 0), or ahead from now (the
// clock stepped back since), when ahead > 0.
type staleChecker struct {
	checker
	age   atomic.Int64 // time.Duration
	ahead atomic.Int64 // time.Duration
}

func (c *staleChecker) LastHeard() time.Time {
	if a := time.Duration(c.ahead.Load()); a > 0 {
		return time.Now().Add(a)
	}
	if a := time.Duration(c.age.Load()); a >= 0 {
		return time.Now().Add(-a)
	}
	return time.Time{}
}
func (c *staleChecker) MaxStaleness() time.Duration { return time.Second }

// TestStaleGrace: an established socket whose re-check finds the checker
// stale stays while the checker's last contact is within MaxStaleness (1 s
// here) + StaleGrace, and only with a grace; a revocation still
// disconnects it.
func TestStaleGrace(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		grace time.Duration
		err   error
		age   time.Duration // since the checker last heard from its store; < 0: never
		ahead time.Duration // > 0: last heard this far in the future (clock stepped back)
		want  string        // the kick reason, "" for kept
	}{
		{name: "no grace: stale disconnects", err: revocation.ErrStale, age: 2 * time.Second, want: socketauth.ReasonUnavailable},
		{name: "within grace: kept", grace: 10 * time.Second, err: revocation.ErrStale, age: 2 * time.Second},
		{name: "grace over: disconnected", grace: 10 * time.Second, err: revocation.ErrStale, age: 12 * time.Second, want: socketauth.ReasonUnavailable},
		{name: "never heard: disconnected", grace: 10 * time.Second, err: revocation.ErrStale, age: -1, want: socketauth.ReasonUnavailable},
		{name: "clock stepped back: disconnected", grace: 10 * time.Second, err: revocation.ErrStale, ahead: time.Hour, want: socketauth.ReasonUnavailable},
		{name: "revoked within grace: disconnected", grace: 10 * time.Second, err: revocation.ErrRevoked, age: 2 * time.Second, want: socketauth.ReasonTokenRevoked},
		{name: "other error within grace: disconnected", grace: 10 * time.Second, err: errors.New("checker broke"), age: 2 * time.Second, want: socketauth.ReasonUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &staleChecker{}
			rc.age.Store(int64(tc.age))
			rc.ahead.Store(int64(tc.ahead))
			g := newGuard(t, e.auth, socketauth.Options{Revocation: rc, RecheckEvery: 20 * time.Millisecond, StaleGrace: tc.grace})
			k := newKicks()
			if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(time.Minute)), "kid", k.kick); code != "" {
				t.Fatal(code)
			}
			rc.set(tc.err)
			if tc.want != "" {
				k.wait(t, tc.want)
				return
			}
			k.none(t, 200*time.Millisecond)
			if g.Len() != 1 {
				t.Fatalf("guard watches %d sockets, want 1", g.Len())
			}
			// The outage outlasts the grace: disconnected then.
			rc.age.Store(int64(tc.grace + 2*time.Second))
			k.wait(t, socketauth.ReasonUnavailable)
		})
	}
}

// The mirror is what StaleGrace is for.
var _ socketauth.Staleness = (*revocation.Mirror)(nil)

// keyChecker is a KeyChecker returning err.
type keyChecker struct{ checker }

func (k *keyChecker) LookupKey(ctx context.Context, _ keys.KeyID) (keys.PublicKey, error) {
	return keys.PublicKey{}, k.CheckRevoked(ctx, "", nil)
}

// TestRecheckKeys: a live socket whose signing key the key set now lists
// as revoked is disconnected (token_revoked), without a revocation
// checker; a key set that cannot vouch for the key (stale past its bound,
// the key no longer listed) disconnects it too (unavailable): fail closed,
// as a handshake would.
func TestRecheckKeys(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{name: "key revoked", err: fmt.Errorf("remote: %w", verifier.ErrKeyRevoked), want: socketauth.ReasonTokenRevoked},
		{name: "key set stale", err: errors.New("remotekeys: key set stale"), want: socketauth.ReasonUnavailable},
		{name: "unknown key", err: verifier.ErrUnknownKey, want: socketauth.ReasonUnavailable},
		{name: "key fine", err: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := &keyChecker{}
			g := newGuard(t, e.auth, socketauth.Options{Keys: kc, RecheckEvery: 20 * time.Millisecond})
			k := newKicks()
			if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(time.Minute)), "kid", k.kick); code != "" {
				t.Fatal(code)
			}
			k.none(t, 60*time.Millisecond)
			kc.set(tc.err)
			if tc.want == "" {
				k.none(t, 200*time.Millisecond)
				return
			}
			k.wait(t, tc.want)
		})
	}
}

// TestStaleGraceHandshake: the grace is for established sockets only; a
// handshake while the checker is stale is refused.
func TestStaleGraceHandshake(t *testing.T) {
	e := newEnv(t)
	rc := &staleChecker{}
	rc.age.Store(int64(2 * time.Second))
	rc.set(revocation.ErrStale)
	g := newGuard(t, e.auth, socketauth.Options{Revocation: rc, StaleGrace: time.Hour})
	tok := e.mint(t, time.Now())
	if _, _, code, _ := g.Check(map[string]any{"token": tok, "proof": proof(t, e.device, htu, tok)}); code != socketauth.ReasonUnavailable {
		t.Fatalf("handshake with a stale checker: %q, want %q", code, socketauth.ReasonUnavailable)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	g, err := socketauth.New(e.auth, path, socketauth.Options{Revocation: &checker{}, RecheckEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	k := newKicks()
	if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(100*time.Millisecond)), "kid", k.kick); code != "" {
		t.Fatal(code)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	k.none(t, 200*time.Millisecond) // the expiry timer was stopped
	if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(time.Minute)), "kid", k.kick); code != socketauth.CodeClosed {
		t.Fatalf("register after Close: %q", code)
	}
	goleak.VerifyNone(t)
}

// TestAttachRefusesConnectionStateRecovery: with SkipMiddlewares a
// recovered socket connected without a handshake check, and Attach refused
// only that. Without it, socket.io still restores the session when it
// creates the socket, before the middleware: a handshake with a forged
// token and a session's pid and offset (a scratch test over long-polling:
// a socket joined to a room, its transport closed, a message sent to the
// room, then {"token": "v4.public.bogus", "pid", "offset"}) was written
// the missed message, then the invalid_token connect_error. Attach now
// refuses any server with connection state recovery.
func TestAttachRefusesConnectionStateRecovery(t *testing.T) {
	e := newEnv(t)
	g := newGuard(t, e.auth, socketauth.Options{})
	through := socket.DefaultConnectionStateRecovery()
	through.SetSkipMiddlewares(false)

	tests := []struct {
		name    string
		csr     *socket.ConnectionStateRecovery
		refused bool
	}{
		{"no recovery", nil, false},
		{"recovery skipping middlewares (the default)", socket.DefaultConnectionStateRecovery(), true},
		{"recovery through middlewares", through, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := socket.DefaultServerOptions()
			if tt.csr != nil {
				opts.SetConnectionStateRecovery(tt.csr)
			}
			io := socket.NewServer(nil, opts)
			defer io.Close(nil)
			err := g.Attach(io.Of("/", nil))
			if tt.refused != errors.Is(err, socketauth.ErrConfig) || (!tt.refused && err != nil) {
				t.Fatalf("Attach: %v, want refused %v", err, tt.refused)
			}
		})
	}
	if err := g.Attach(nil); !errors.Is(err, socketauth.ErrConfig) {
		t.Fatalf("Attach(nil): %v", err)
	}
}

// FuzzCheck: any auth payload is refused with a stable code, never a panic
// or an acceptance.
func FuzzCheck(f *testing.F) {
	f.Add("v4.public.x", "a.b.c")
	f.Add("", "")
	f.Add("v4.public.eyJ9.eyJraWQiOiJrNC5waWQuIn0", "eyJ0eXAiOiJkcG9wK2p3dCJ9..")
	e := newEnv(f)
	g, err := socketauth.New(e.auth, path, socketauth.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer g.Close()
	codes := map[string]bool{"invalid_token": true, "invalid_dpop_proof": true, "token_expired": true, "token_revoked": true}
	f.Fuzz(func(t *testing.T, tok, proof string) {
		c, _, code, _ := g.Check(map[string]any{"token": tok, "proof": proof})
		if c != nil || !codes[code] {
			t.Fatalf("claims %v, code %q", c, code)
		}
	})
}

// TestExpiryByGuardClock: a socket is disconnected once its token's exp
// has passed by the Guard's clock (Options.Now, the verifier's), not only
// when a timer set from that clock at the handshake fires: a clock that
// steps forward (an NTP correction, a resumed VM) must not keep an expired
// token's socket connected.
func TestExpiryByGuardClock(t *testing.T) {
	e := newEnv(t)
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	g := newGuard(t, e.auth, socketauth.Options{Now: now, RecheckEvery: 20 * time.Millisecond})
	k := newKicks()
	// The step stays within the grace a socket has to connect (this one
	// never does), so only its expiry can drop it.
	if code := g.Register(socket.MakeSocket(), claims(now().Add(10*time.Second)), "kid", k.kick); code != "" {
		t.Fatal(code)
	}
	k.none(t, 100*time.Millisecond)
	skew.Store(int64(11 * time.Second)) // the Guard's clock is now past exp; the timer has 10 s to go
	k.wait(t, socketauth.ReasonTokenExpired)
	if g.Len() != 0 {
		t.Fatal("session kept after expiry")
	}
}

// hangingChecker is a RevocationChecker whose check of device "dev_hang"
// waits for its context to end (a remote checker whose backend stopped
// answering); every other check returns the checker's error.
type hangingChecker struct {
	checker
	hung chan struct{} // closed when a check first waits
	once sync.Once
}

func (c *hangingChecker) CheckRevoked(ctx context.Context, kid keys.KeyID, cl *token.Claims) error {
	if cl.Device != "dev_hang" {
		return c.checker.CheckRevoked(ctx, kid, cl)
	}
	c.once.Do(func() { close(c.hung) })
	<-ctx.Done()
	return ctx.Err()
}

// TestRecheckHangingChecker: a re-check that does not answer is bounded by
// Options.Timeout and fails closed (unavailable), and does not hold up the
// re-check of the other sockets: a revocation still disconnects them.
func TestRecheckHangingChecker(t *testing.T) {
	e := newEnv(t)
	rc := &hangingChecker{hung: make(chan struct{})}
	g := newGuard(t, e.auth, socketauth.Options{Revocation: rc, RecheckEvery: 20 * time.Millisecond, Timeout: 200 * time.Millisecond})
	hang, other := newKicks(), newKicks()
	c := claims(time.Now().Add(time.Minute))
	c.Device = "dev_hang"
	if code := g.Register(socket.MakeSocket(), c, "kid", hang.kick); code != "" {
		t.Fatal(code)
	}
	if code := g.Register(socket.MakeSocket(), claims(time.Now().Add(time.Minute)), "kid", other.kick); code != "" {
		t.Fatal(code)
	}
	select {
	case <-rc.hung:
	case <-time.After(3 * time.Second):
		t.Fatal("the re-check never asked about the socket")
	}
	rc.set(revocation.ErrRevoked)
	other.wait(t, socketauth.ReasonTokenRevoked)
	hang.wait(t, socketauth.ReasonUnavailable)
}
