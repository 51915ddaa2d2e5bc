// Package gateway puts hallpass verification in front of an application
// that knows nothing about it, in two ways:
//
//   - as a reverse proxy (Gateway.ServeHTTP on every path but the verify
//     path): each request is verified (access token and DPoP proof, through
//     an Authenticator such as *httpauth.Authenticator) and forwarded to the
//     upstream with X-Hallpass-Account and X-Hallpass-Device set from the
//     verified claims; a path with a "." or ".." segment is refused (400
//     invalid_request, by the Authenticator), so a client cannot climb out
//     of the upstream's base path;
//   - as a forward-auth endpoint (GET Config.VerifyPath, default /v1/verify)
//     for nginx auth_request, Traefik ForwardAuth and Caddy forward_auth:
//     the proxy asks about the original request and gets 200 with the
//     identity headers, or 401 problem+json with WWW-Authenticate.
//
// # What it trusts
//
// The Authenticator (keys, issuer, audience, clock, replay cache,
// revocation) and its configuration: the public URL clients use, the
// upstream, and the list of trusted proxies.
//
// The identity headers are the gateway's alone: every request header whose
// name, compared case-insensitively with '_' read as '-', starts with
// "X-Hallpass-" is removed from every request it receives, accepted or
// refused, before anything else, and only the verified values are set on
// the forwarded request. ('_' matters: CGI, PHP, WSGI and Rack map both
// X-Hallpass-Account and X_Hallpass_Account to HTTP_X_HALLPASS_ACCOUNT.)
//
// A forward-auth request describes another request through headers:
// X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host and
// X-Forwarded-Uri (Traefik, Caddy), or X-Original-Method and
// X-Original-URI (nginx). They are believed only from a peer address in
// Config.TrustedProxies; from any other peer the endpoint answers 403 and
// verifies nothing. Even from a trusted proxy the scheme and host are not
// taken as given: the origin they name must be one of Config.Origins
// (default: the origin of Config.PublicURL), since a proxy usually passes
// the client's Host header on, and a proof made for another site that
// shares the audience must not pass here. Without X-Forwarded-Proto and
// X-Forwarded-Host the first origin is used.
//
// # Headers forwarded upstream
//
// The DPoP header is removed: the proof has been used (the replay cache
// holds it), so the upstream cannot verify it again, and it is of no use
// to anyone else. The Authorization header is kept by default, so that an
// upstream can inspect the token or verify it itself (without a proof it
// is worthless: it is bound to the device key); Config.StripAuthorization
// removes it. X-Forwarded-For, -Host and -Proto are set for the upstream;
// the values a peer sent are kept (For: extended) only when the peer is a
// trusted proxy. -Host is the host of Config.PublicURL, not the Host
// header, unless a trusted proxy sent the request. Every other X-Forwarded-* header (Port, Prefix, Ssl...)
// and X-Real-IP are also removed unless a trusted proxy sent them, and one
// spelled with '_' is removed from every peer.
//
// # Upgraded connections
//
// A verified request that asks to switch protocols (a WebSocket handshake)
// becomes a connection that would outlive its token. The gateway watches
// each one: it is closed, towards the client and the upstream, when the
// token expires (by Config.Now, the verifier's clock: a timer, and a
// re-check every Config.RecheckEvery, 1 s, for a clock that stepped
// forward), when that re-check finds the token's signing key revoked in
// Config.Keys or no longer vouched for by it, and, with Config.Revocation,
// when it finds the token, device, account or key revoked, or cannot vouch
// for it (fail closed). The connection is cut, not closed with a WebSocket close frame
// (the gateway does not parse the frames it relays): the client sees an
// abnormal closure (1006), refreshes its token and reconnects.
//
// # Upstream connections and metrics
//
// Verified requests go to the upstream over Config.Transport, by default
// NewTransport: kept-alive connections, up to DefaultUpstreamMaxIdle idle
// ones reused, HTTP/2 when an https upstream offers it, no proxy from the
// environment. Config.Observer, when set, is told the outcome and problem
// code of every answer and the time each authentication took; the gateway
// serves no metrics or health endpoints itself (`hallpass gateway` serves
// them on a listener of its own, never the public one).
//
// # Limits
//
// Only upgraded connections are watched: a long ordinary response (a
// download, server-sent events) runs to its end once its request was
// verified.
//
// The forward-auth endpoint sees no request body and cannot bind it;
// neither can DPoP. nginx passes the WWW-Authenticate of a 401 on, but
// not its body, nor the DPoP-Nonce of a 401 or a 200 unless told to
// (auth_request_set, add_header): behind forward auth, DPoP server nonces
// (an Authenticator that is a NonceIssuer) reach clients only so.
package gateway
