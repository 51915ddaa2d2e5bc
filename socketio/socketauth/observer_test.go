package socketauth_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/socketio/socketauth"
)

// recorder is an Observer that keeps what it is told, as "outcome/code"
// and "disconnected/reason".
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) Handshake(outcome, code string) { r.add(outcome + "/" + code) }
func (r *recorder) Disconnected(reason string)     { r.add("disconnected/" + reason) }

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, s)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.seen
	r.seen = nil
	return out
}

// TestObserver: every handshake verdict is reported once, with its outcome
// (allowed, refused for the client's credentials, error when the server
// could not decide), and so is every socket the Guard drops.
func TestObserver(t *testing.T) {
	e := newEnv(t)
	rc := &checker{}
	obs := &recorder{}
	g := newGuard(t, e.auth, socketauth.Options{Revocation: rc, RecheckEvery: 20 * time.Millisecond, Observer: obs})
	valid := func(t *testing.T) map[string]any {
		tok := e.mint(t, time.Now())
		return map[string]any{"token": tok, "proof": proof(t, e.device, htu, tok)}
	}
	k := newKicks()
	for _, tc := range []struct {
		name  string
		auth  func(t *testing.T) map[string]any
		stale bool // the revocation checker cannot vouch
		want  string
	}{
		{name: "no token", auth: func(*testing.T) map[string]any { return nil }, want: "refused/invalid_token"},
		{name: "proof for another URL", auth: func(t *testing.T) map[string]any {
			tok := e.mint(t, time.Now())
			return map[string]any{"token": tok, "proof": proof(t, e.device, "https://other.example.com/socket.io/", tok)}
		}, want: "refused/invalid_dpop_proof"},
		{name: "stale revocation checker", auth: valid, stale: true, want: "error/unavailable"},
		// Last: while the checker is stale the Guard's rechecks would drop
		// an accepted socket (fail closed), before the revocation below.
		{name: "accepted", auth: valid, want: socketauth.OutcomeAllowed + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stale {
				rc.set(revocation.ErrStale)
				defer rc.set(nil)
			}
			code, _ := g.Admit(socket.MakeSocket(), tc.auth(t), k.kick)
			if got := obs.take(); !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("observed %q (code %q), want [%q]", got, code, tc.want)
			}
		})
	}
	// The accepted socket is dropped when its token is revoked.
	rc.set(revocation.ErrRevoked)
	k.wait(t, socketauth.ReasonTokenRevoked)
	if got := obs.take(); !slices.Equal(got, []string{"disconnected/" + socketauth.ReasonTokenRevoked}) {
		t.Fatalf("observed %q, want the disconnection", got)
	}
}

// TestObserverClosedGuard: a handshake refused because the Guard is closed
// is an error, not the client's fault.
func TestObserverClosedGuard(t *testing.T) {
	e := newEnv(t)
	obs := &recorder{}
	g := newGuard(t, e.auth, socketauth.Options{Observer: obs})
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	tok := e.mint(t, time.Now())
	if code, _ := g.Admit(socket.MakeSocket(), map[string]any{"token": tok, "proof": proof(t, e.device, htu, tok)}, newKicks().kick); code != socketauth.CodeClosed {
		t.Fatalf("handshake on a closed Guard: %q", code)
	}
	if got := obs.take(); !slices.Equal(got, []string{"error/" + socketauth.CodeClosed}) {
		t.Fatalf("observed %q", got)
	}
}
