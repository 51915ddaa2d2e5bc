// Package httpauth authenticates requests that carry a hallpass access token
// and a DPoP proof of possession, for net/http and for any other transport.
//
// Authenticator.Authenticate is the transport-neutral core: given a method,
// the request path (or full URL), the Authorization header and the DPoP
// header, it verifies the token offline with a verifier.Verifier (size, kid,
// signature, claims, iss, aud, times, revocation) and then, as the token's
// device binding, the proof (RFC 9449): typ, alg, signature, htm = method,
// htu = Config.PublicURL + path, iat window, ath = SHA-256 of the token,
// thumbprint of the proof key = the token's cnf.jkt, and last the replay
// cache. Middleware, AuthenticateHTTP, the Echo adapter (verifier/echoauth),
// the gateway and the socket.io handshake are thin wrappers around it, and
// answer failures identically through WriteProblem.
//
// # What it trusts
//
// The Verifier's key source and revocation checker, its clock, and
// Config.PublicURL: the URL clients use to reach the service, set by the
// operator. The request URL of a proof is built from PublicURL and the path
// the server received; never from the Host or X-Forwarded-* headers, which
// the client controls. Behind a proxy that strips a path prefix, put the
// prefix in PublicURL. A path with a "." or ".." segment (dots plain or
// percent-encoded; segments split at '/', and at %2F, '\' and %5C, which
// some servers read as '/') is refused, 400 invalid_request, before the token is
// looked at: appended to PublicURL and normalised, ".." would climb out of
// PublicURL's base path to a URL another service answers, and the handler
// (or the gateway's upstream) would get a path other than the one the
// proof names. Clients send paths in normal form.
//
// The token is read only from "Authorization: DPoP <token>", never from a
// query string or a cookie. "Authorization: Bearer" is refused unless
// Config.AllowBearer is set; SECURITY: a bearer token is usable by anyone
// who sees it, so that switch turns off the device binding for every client.
//
// # Errors
//
// Every failure is an *Error with an HTTP status and a stable code:
// invalid_token, token_expired, token_revoked, invalid_dpop_proof,
// use_dpop_nonce (401, with a fresh DPoP-Nonce), invalid_request (400: a
// path that is not absolute, such as "*", or has a dot segment), rate_limited (429: the proof key holds its
// share of the replay cache), unavailable (503: the
// replay cache, the key source or the revocation mirror could not answer;
// fail closed) or internal_error (500). WriteProblem writes it as RFC 9457
// application/problem+json, with the same fixed titles and details as the
// issuer, `WWW-Authenticate: DPoP error="<code>", algs="ES256 EdDSA"` on
// 401, and a request id on 5xx. No token content, claim value or key
// material goes into a response or a log line; the cause of a failure is
// logged (debug for 401, error for 5xx) with fixed text only.
//
// # Limits
//
// The default replay cache is in memory: it stops a proof from being
// replayed to this process only. Several nodes behind one load balancer
// should share dpop/redisreplay. Without verifier.WithRevocation a stolen
// token and its device key stay usable until the token expires.
package httpauth
