package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// Defaults of the watch over upgraded connections.
const (
	// DefaultRecheckEvery is how often the token of each proxied WebSocket
	// is checked against Config.Revocation.
	DefaultRecheckEvery = time.Second
	// recheckTimeout bounds one revocation check of a live connection;
	// a checker that does not answer in time closes it (fail closed).
	recheckTimeout = 5 * time.Second
)

// RevocationChecker is asked, every Config.RecheckEvery, whether the token
// of each proxied upgraded connection may still be used;
// *revocation.Mirror is one. Any error closes the connection.
type RevocationChecker interface {
	CheckRevoked(ctx context.Context, kid keys.KeyID, c *token.Claims) error
}

// KeyChecker is asked, at every re-check, for the signing key of each
// proxied upgraded connection's token; a verifier.KeySource such as
// *remotekeys.KeySet is one. An error wrapping verifier.ErrKeyRevoked
// closes the connection as revoked, any other error as unavailable (fail
// closed, as a handshake would).
type KeyChecker interface {
	LookupKey(ctx context.Context, kid keys.KeyID) (keys.PublicKey, error)
}

// Reasons an upgraded connection is closed, as logged.
const (
	closedExpired     = httpauth.CodeTokenExpired
	closedRevoked     = httpauth.CodeTokenRevoked
	closedUnavailable = httpauth.CodeUnavailable
)

// isUpgrade reports whether r asks to switch protocols (a WebSocket
// handshake, "Connection: Upgrade" with an "Upgrade" header), as
// httputil.ReverseProxy decides it: such a request becomes a connection
// that outlives its token unless it is watched.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// serveUpgrade proxies a verified upgrade request and closes the
// connection, both ways, when the token expires or Config.Revocation stops
// vouching for it, as socketio/socketauth does for socket.io. The
// connection is cut (the client sees an abnormal closure, 1006 for a
// WebSocket): no close frame can be written safely into a stream of frames
// the gateway does not parse. The client refreshes its token and
// reconnects.
func (g *Gateway) serveUpgrade(w http.ResponseWriter, r *http.Request, c *token.Claims, authz string) {
	left := c.Expiry.Sub(g.now())
	if left <= 0 {
		// Inside the verifier's leeway: accepted by it, but the
		// connection would be closed at once.
		g.refuseAuth(w, &httpauth.Error{Status: http.StatusUnauthorized, Code: httpauth.CodeTokenExpired})
		return
	}
	// The token is authentic now: its footer is no longer unverified.
	_, tok, _ := strings.Cut(authz, " ")
	f, err := token.UnsafeParseFooterKid(tok)
	if err != nil {
		g.log.LogAttrs(r.Context(), slog.LevelError, "footer of a verified token does not parse", slog.String("error", err.Error()))
		g.refuseAuth(w, &httpauth.Error{Status: http.StatusInternalServerError, Code: httpauth.CodeInternal})
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The watch's own check first, so that a connection is never accepted
	// by the verifier and dropped a moment later by the watch.
	if reason := g.recheck(ctx, f.Kid, c); reason != "" {
		status := http.StatusUnauthorized
		if reason == closedUnavailable {
			status = http.StatusServiceUnavailable
		}
		g.refuseAuth(w, &httpauth.Error{Status: status, Code: reason})
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.watch(ctx, cancel, f.Kid, c, left)
	}()
	defer wg.Wait() // after cancel (deferred later, runs first)
	defer cancel()
	g.forward(ctx, w, r, c)
}

// watch cancels the connection's context at the token's expiry, or when a
// re-check (every Config.RecheckEvery) refuses it, or returns when ctx
// ends (the connection closed). Cancelling makes httputil.ReverseProxy
// close the upstream connection, which ends the copy and closes the
// client's. The expiry timer runs on the monotonic clock from the
// handshake; the re-check compares exp with Config.Now, which catches a
// clock that stepped forward since.
func (g *Gateway) watch(ctx context.Context, cancel context.CancelFunc, kid keys.KeyID, c *token.Claims, left time.Duration) {
	expiry := time.NewTimer(left)
	defer expiry.Stop()
	tick := time.NewTicker(g.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expiry.C:
			g.closeUpgraded(ctx, cancel, closedExpired)
			return
		case <-tick.C:
			if reason := g.recheck(ctx, kid, c); reason != "" {
				g.closeUpgraded(ctx, cancel, reason)
				return
			}
		}
	}
}

// recheck compares the token's exp with the clock, then asks Config.Keys
// and Config.Revocation about it; it returns the reason to close, or "".
func (g *Gateway) recheck(ctx context.Context, kid keys.KeyID, c *token.Claims) string {
	if !g.now().Before(c.Expiry) {
		return closedExpired
	}
	if reason := g.recheckKey(ctx, kid); reason != "" {
		return reason
	}
	if g.rc == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	defer cancel()
	err := g.rc.CheckRevoked(ctx, kid, c)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, revocation.ErrRevoked):
		return closedRevoked
	case errors.Is(err, revocation.ErrStale), ctx.Err() != nil:
		return closedUnavailable
	}
	// Another checker's refusal: a revoked token, as the verifier reads it.
	return closedRevoked
}

// recheckKey asks Config.Keys for the token's signing key.
func (g *Gateway) recheckKey(ctx context.Context, kid keys.KeyID) string {
	if g.kc == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	defer cancel()
	_, err := g.kc.LookupKey(ctx, kid)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, verifier.ErrKeyRevoked):
		return closedRevoked
	}
	return closedUnavailable
}

func (g *Gateway) closeUpgraded(ctx context.Context, cancel context.CancelFunc, reason string) {
	g.log.LogAttrs(ctx, slog.LevelInfo, "upgraded connection closed", slog.String("reason", reason))
	cancel()
}
