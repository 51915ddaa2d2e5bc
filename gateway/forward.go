package gateway

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/hallpass/hallpass/problem"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// Codes of the gateway's own refusals (the Authenticator's are
// httpauth.Code...), from the one vocabulary of package problem.
const (
	codeInvalidRequest = problem.InvalidRequest
	codeForbidden      = problem.Forbidden
	codeNotFound       = problem.NotFound
	codeBadGateway     = problem.BadGateway
)

// detailInvalidRequest is the gateway's own detail for invalid_request: the
// forward-auth request (from the proxy) is what is malformed.
const detailInvalidRequest = "The forwarded request description is missing or malformed."

// writeProblem answers with one of the gateway's own codes.
func writeProblem(w http.ResponseWriter, status int, code string) {
	detail := ""
	if code == codeInvalidRequest {
		detail = detailInvalidRequest
	}
	b, _ := json.Marshal(problem.New(code, status, detail, ""))
	h := w.Header()
	h.Set("Content-Type", problem.ContentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveVerify is the forward-auth endpoint.
func (g *Gateway) serveVerify(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		g.refuse(w, http.StatusMethodNotAllowed, codeInvalidRequest)
		return
	}
	if !g.trustedPeer(r.RemoteAddr) {
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "forward-auth request from an untrusted peer refused", slog.String("peer", r.RemoteAddr))
		g.refuse(w, http.StatusForbidden, codeForbidden)
		return
	}
	method, target, ok := g.forwarded(r.Header)
	if !ok {
		g.log.LogAttrs(r.Context(), slog.LevelWarn, "forward-auth request without a valid description of the original request (check the proxy configuration)")
		g.refuse(w, http.StatusBadRequest, codeInvalidRequest)
		return
	}
	req, ok := credentials(r.Header)
	if !ok {
		g.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused: repeated Authorization or DPoP header")
		g.refuseAuth(w, &httpauth.Error{Status: http.StatusUnauthorized, Code: httpauth.CodeInvalidToken})
		return
	}
	req.Method, req.URL = method, target
	c, err := g.authenticate(r.Context(), req)
	if err != nil {
		g.refuseAuth(w, err) // the Authenticator logged the cause
		return
	}
	h := w.Header()
	h.Set(HeaderAccount, c.Subject)
	h.Set(HeaderDevice, c.Device)
	h.Set("Cache-Control", "no-store")
	g.setNonce(h)
	w.WriteHeader(http.StatusOK)
	g.obs.Request(OutcomeAllowed, "")
}

// forwarded reads the original method and URL from a trusted proxy's
// headers: X-Forwarded-Method, -Proto, -Host, -Uri (Traefik, Caddy) or
// X-Original-Method, -URI (nginx). The origin must be a configured one.
func (g *Gateway) forwarded(h http.Header) (method, target string, ok bool) {
	method, ok = oneOf(h, "X-Forwarded-Method", "X-Original-Method")
	if !ok || !isToken(method) {
		return "", "", false
	}
	uri, ok := oneOf(h, "X-Forwarded-Uri", "X-Original-Uri")
	if !ok || !validURI(uri) {
		return "", "", false
	}
	o := g.origins[0]
	proto, pok := single(h, "X-Forwarded-Proto")
	host, hok := single(h, "X-Forwarded-Host")
	if pok == errMany || hok == errMany {
		return "", "", false
	}
	if pok == found || hok == found {
		if pok == found {
			o.scheme = strings.ToLower(proto)
		}
		if hok == found {
			o.host = canonicalHost(o.scheme, host)
		} else {
			o.host = canonicalHost(o.scheme, o.host)
		}
		if !g.knownOrigin(o) {
			return "", "", false
		}
	}
	return method, o.String() + uri, true
}

func (g *Gateway) knownOrigin(o origin) bool {
	for _, k := range g.origins {
		if k == o {
			return true
		}
	}
	return false
}

type presence int

const (
	absent presence = iota
	found
	errMany
)

// single reads a header that must appear at most once with one value (no
// comma-separated list: a proxy appending to a client's value shows as one).
func single(h http.Header, name string) (string, presence) {
	v, p := one(h, name)
	if p == found && strings.Contains(v, ",") {
		return "", errMany
	}
	return v, p
}

// one reads a header that must appear at most once, not empty.
func one(h http.Header, name string) (string, presence) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", absent
	case len(vs) > 1 || strings.TrimSpace(vs[0]) == "":
		return "", errMany
	}
	return strings.TrimSpace(vs[0]), found
}

// oneOf reads the first of two header names present, each at most once;
// both present must agree.
func oneOf(h http.Header, a, b string) (string, bool) {
	va, pa := one(h, a)
	vb, pb := one(h, b)
	switch {
	case pa == errMany || pb == errMany:
		return "", false
	case pa == found && pb == found:
		return va, va == vb
	case pa == found:
		return va, true
	case pb == found:
		return vb, true
	}
	return "", false
}

// isToken: an HTTP method is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validURI: an origin-form request target, printable ASCII, no fragment.
func validURI(s string) bool {
	if !strings.HasPrefix(s, "/") || len(s) > 8<<10 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}
