// Package issuer is the hallpass HTTP issuer behind `hallpass serve`: it
// creates accounts from a username, binds each device to its DPoP key,
// mints PASETO v4.public access tokens and rotates single-use refresh
// tokens. Build one with [New] and serve [Server.Handler] (Echo v4, no
// global state). The API is described in docs/openapi.yaml, served at
// GET /openapi.yaml.
//
// # Endpoints
//
//	POST /v1/accounts            signup: username (+ device_name) and a DPoP proof
//	POST /v1/token               grant_type=refresh_token, form or JSON, DPoP proof
//	GET  /v1/me                  Authorization: DPoP <token> + proof with ath
//	POST /v1/logout              same authentication; ends this device's session
//	GET  /v1/me/devices          same authentication; the account's devices
//	DELETE /v1/me/devices/{id}   same authentication; signs out one of them
//	GET  /.well-known/hallpass/keys, /openapi.yaml, /healthz, /readyz
//
// Metrics are not on Handler: MetricsHandler serves them, on a listener
// only monitoring reaches (hallpass serve: the admin listener).
//
// # What it trusts
//
// Its Config: the public URL (DPoP htu and token iss derive from it, never
// from Host or X-Forwarded-* headers), the key source, the store, and the
// trusted-proxy list that decides whether X-Forwarded-For names the client
// (only for rate limits and logs; never for a security decision about a
// token). Everything in a request is tainted: bodies are size-limited
// (16 KiB) and parsed strictly (duplicate JSON members refused), usernames
// go through account.UsernamePolicy, tokens through the verifier package,
// proofs through dpop.Verify.
//
// # Shape
//
// The handlers are thin: they decode the request, call a transport-free
// flow of package flow (signup, refresh rotation, logout and device
// sign-out, revocation writes) and map its *flow.Error to a problem
// answer with the status of package problem. Authenticated endpoints run
// verifier/httpauth, the code every other hallpass-protected service runs;
// the issuer adds only its account-state check (flow.StateCheck, or
// flow.AccountCheck on the identity routes when device state reaches the
// mirror) as a verifier.RevocationChecker after the mirror.
//
// # Decisions
//
// Signup: rate limits (per client address, per /64 for IPv6, per IPv4 /24
// and IPv6 /56 and /48, and global, the global budget keeping a reserve
// for networks unseen in its window; every attempt counts;
// docs/ratelimits.md) -> body -> username policy -> DPoP proof (htu =
// PublicURL + "/v1/accounts", a server nonce when configured) -> ids from
// Config.Rand -> access token and refresh token minted -> one atomic
// Store.CreateAccount (the username claim and the creation are one step).
// Tokens are returned only after that step succeeded.
//
// Refresh counters: a new session starts at Session.Counter 0 and its
// first refresh token carries ctr 0. A refresh presents ctr n
// (RefreshRequest.Counter = n); when n is current the session advances to
// n+1 and the successor carries ctr n+1.
//
// Refresh: open the refresh token (authenticated encryption, so only
// tokens this issuer sealed go on) -> load the session -> the DPoP proof
// must be signed by the session's key, checked BEFORE any state change: a
// refresh token stolen and presented with another key gets invalid_grant
// and the real device's session is untouched -> mint the candidate
// successor pair, seal it with refresh.Codec.SealBlob -> one atomic
// Store.Refresh. Advanced: the candidate is returned. Grace (the previous
// token within RefreshGrace, a lost response or concurrent refreshes): the
// stored successor is opened and returned, so every concurrent caller gets
// the same pair. Retried (the previous token after the grace window with
// the retry_id of the request that advanced the session; the store keeps
// its SHA-256 digest): the stored refresh token with an access token minted
// now, logged as event=refresh_retried. Reused (anything older, or the
// previous token after the grace window without that retry_id): the store
// ends the session; the issuer ends it again
// (idempotent, so the device is marked revoked whatever the engine did),
// writes an audit line (event=refresh_reuse, ids only) and counts it in
// hallpass_refresh_reuse_detected_total; the answer is invalid_grant.
// Rejected (ended, expired, idle, banned): invalid_grant.
//
// Authenticated routes: httpauth.Authenticator verifies the token offline
// (a token verified before skips its signature check: Config.TokenCache)
// against the issuer's own key source (so a retired key still verifies and
// a revoked one is refused), then runs the revocation checks, the mirror
// and then the account state, then the DPoP proof (ath, htm, htu,
// cnf.jkt, replay) as the binding. The account state is one store read on
// the request's goroutine, whose result the handler reuses; a store that
// does not answer makes it 503. It comes in two strengths. The full state
// (flow.StateCheck, account.Store.GetCaller: the device must still be
// active, belong to the token's account and carry the token's jkt, and the
// account must not be banned) runs on every route, unless device
// revocations reach the issuer's mirror: Config.Revocations is set and
// Config.RevocationMirror mirrors it, fails closed and takes this node's
// own entries (revocation.Mirror does). Then the identity routes (GET
// /v1/me, /v1/logout, GET /v1/me/devices) read only the account
// (flow.AccountCheck: not deleted, not banned), and the routes that change
// the account (rename, delete, link and recovery codes, signing out a
// device) keep the full state, so that a device signed out in the store
// whose entry was never written cannot act on the account.
//
// Logout ends the device's session (its refresh token stops working) and
// marks the device revoked. With Config.Revocations, logout, signing out a
// device (self-service or admin), a reuse detection and a ban also add a
// revocation entry, so every verifier mirror refuses the device's (or
// account's) access tokens, not only this issuer's store check; with
// Config.RevocationMirror the issuer's own verifier checks the denylist too
// (a stale mirror answers 503 and makes /readyz fail).
//
// # Admin API
//
// [Server.AdminHandler] serves the admin API (docs/openapi-admin.yaml) for
// a separate listener; none of its routes exists on [Server.Handler].
// Requests carry "Authorization: Bearer <admin key>"; the key's SHA-256
// digest is compared in constant time with every line of
// Config.AdminKeysFile (made by [NewAdminKey]; read again when it
// changes). Every admin request made with a valid key is audited: a log
// line "admin audit" (who, action, targets, status, result) and, when set,
// Config.AuditSink (issuer/redisaudit on Redis). Requests refused before a
// key was accepted are counted and only sampled into the audit
// (Config.AuditRefusedPerMinute), and an address that keeps failing gets
// 429 without its key being looked at (Config.AdminAuthLimit).
//
// # Failure behaviour
//
// Fail closed. Every store, replay-cache and rate-limiter call is bounded
// by Config.StoreTimeout (default 2 s); a store call that does not return
// in time is abandoned and the request answers 503 unavailable with
// Retry-After and a request_id, and never hangs. An abandoned step may
// still complete: each store step is atomic, an abandoned refresh is
// answered again within the grace window, and an abandoned signup at worst
// leaves an account whose tokens nobody received. A replay cache or limiter
// that cannot answer refuses the request (503). Bad input never yields a
// 5xx.
//
// # Output
//
// Errors are RFC 9457 application/problem+json with a stable code of
// package problem, its fixed title, and a detail that is either the code's
// fixed text or a fixed sentence saying what to fix (a refused proof names
// the failed check, an htu mismatch the configured public URL); nothing
// from the request, no token, proof or internal cause is ever sent. 401s carry WWW-Authenticate: DPoP
// error="...", algs="ES256 EdDSA". Causes go to the log at debug level
// (4xx) or warn/error (5xx). Logs are JSON through allow-listed fields
// (method, route template, status, duration in seconds, request_id,
// client_ip, and ids in audit lines); never a header, a body, a token or a
// proof. The request id is made server-side (X-Request-Id is never taken
// from the client). Metrics are registered on Config.Registry, never on the
// global registry.
//
// # Limits
//
// BearerAllowed (off by default) only relaxes /v1/me and /v1/logout:
// signup and refresh always need a proof, and tokens are always bound
// (cnf.jkt). Server nonces, when configured, are demanded on signup and
// refresh only. With the in-memory replay cache, a proof replayed to
// another node is not caught: use dpop/redisreplay when several nodes
// serve one public URL.
package issuer
