package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// Outcomes of a request, as told to an Observer.
const (
	// OutcomeAllowed: verified, and forwarded upstream (or answered 200
	// at the verify endpoint, or upgraded).
	OutcomeAllowed = "allowed"
	// OutcomeRefused: answered 4xx by the gateway (no, bad, expired or
	// revoked credentials; a bad forward-auth request; no such path).
	OutcomeRefused = "refused"
	// OutcomeError: answered 5xx by the gateway: unavailable (key set or
	// revocation mirror stale, Redis down), internal, or bad_gateway (the
	// upstream failed after the request was verified).
	OutcomeError = "error"
)

// Observer is told how every request ended and how long its
// authentication took (metrics). Its methods run on every request: they
// must be cheap and safe for concurrent use.
type Observer interface {
	// Request reports one answered request: its outcome and the problem
	// code answered ("" when allowed). A proxied request is reported
	// once the upstream's response has been relayed.
	Request(outcome, code string)
	// Authenticated reports the time one call of the Authenticator took
	// (token, proof, revocation and replay checks), whatever its verdict.
	Authenticated(d time.Duration)
}

type noObserver struct{}

func (noObserver) Request(string, string)      {}
func (noObserver) Authenticated(time.Duration) {}

// outcomeOf is the outcome of an answer with status.
func outcomeOf(status int) string {
	if status >= http.StatusInternalServerError {
		return OutcomeError
	}
	return OutcomeRefused
}

// refuse answers with one of the gateway's own codes and reports it.
func (g *Gateway) refuse(w http.ResponseWriter, status int, code string) {
	writeProblem(w, status, code)
	g.obs.Request(outcomeOf(status), code)
}

// refuseAuth answers an Authenticator's error (or one of its codes) and
// reports it.
func (g *Gateway) refuseAuth(w http.ResponseWriter, err error) {
	httpauth.WriteProblem(w, err)
	var e *httpauth.Error
	if !errors.As(err, &e) {
		g.obs.Request(OutcomeError, httpauth.CodeInternal) // as WriteProblem answers it
		return
	}
	g.obs.Request(outcomeOf(e.Status), e.Code)
}

// authenticate calls the Authenticator and reports the time it took.
func (g *Gateway) authenticate(ctx context.Context, req httpauth.Request) (*token.Claims, error) {
	start := time.Now()
	c, err := g.auth.Authenticate(ctx, req)
	g.obs.Authenticated(time.Since(start))
	return c, err
}

// upstreamState records, for one proxied request, whether the upstream
// failed (upstreamError ran).
type upstreamState struct{ failed bool }

type upstreamStateKey struct{}

// forward proxies the verified request r, in ctx, and reports it: allowed,
// or bad_gateway when the upstream failed.
func (g *Gateway) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, c *token.Claims) {
	st := &upstreamState{}
	ctx = context.WithValue(httpauth.ContextWithClaims(ctx, c), upstreamStateKey{}, st)
	g.proxy.ServeHTTP(w, r.WithContext(ctx))
	if st.failed {
		g.obs.Request(OutcomeError, codeBadGateway)
		return
	}
	g.obs.Request(OutcomeAllowed, "")
}

// markUpstreamFailed records in r's context that the upstream failed.
func markUpstreamFailed(r *http.Request) {
	if st, ok := r.Context().Value(upstreamStateKey{}).(*upstreamState); ok {
		st.failed = true
	}
}
