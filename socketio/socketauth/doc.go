// Package socketauth authenticates socket.io handshakes with hallpass access
// tokens and DPoP proofs, for servers built on
// github.com/zishang520/socket.io (v3), and disconnects a socket when its
// token expires or is revoked.
//
// # Protocol
//
// The client sends its access token and a DPoP proof in the handshake's auth
// payload:
//
//	io(url, { auth: (cb) => cb({ token: accessToken, proof: dpopProof("GET", "https://chat.example.com/socket.io/", accessToken) }) })
//
// The proof is made for method GET and, as htu, the public URL of the
// socket.io endpoint: the Authenticator's PublicURL followed by the path
// given to New, with its trailing slash ("/socket.io/" for a default
// server), e.g. https://chat.example.com/socket.io/. The query that
// engine.io adds (EIO, transport, sid) is not part of it, and neither is the
// namespace: one proof shape fits every namespace of the server. It must
// carry ath, the hash of the token, like any DPoP proof sent with a token.
//
// A proof is single-use (the Authenticator's replay cache) and lives 60 s:
// give auth as a callback, as above, so that every connection attempt,
// reconnections included, sends a fresh one.
//
// Guard.Attach installs a namespace middleware that runs
// httpauth.Authenticator.Authenticate on Request{Method: "GET", Path,
// Authorization: "DPoP " + auth.token, DPoP: auth.proof}, so a handshake is
// checked exactly like an HTTP request: signature, claims, iss, aud, times,
// revocation, and the proof bound to the token's cnf.jkt. A refused
// handshake gets a connect_error whose message is a stable code, the same
// as httpauth's: invalid_token, token_expired, token_revoked,
// invalid_dpop_proof, use_dpop_nonce (data.nonce holds the nonce),
// unavailable or internal_error; err.data.code repeats it.
//
// # Live sockets
//
// After a socket is accepted, the Guard keeps its claims (Guard.Claims) and
// watches it:
//
//   - at the token's exp, by the Guard's clock, it is disconnected with
//     reason token_expired (a timer set at the handshake, and every
//     re-check compares exp with the clock again, so a clock that steps
//     forward does not keep the socket past exp by more than
//     RecheckEvery); a client that wants to stay connected reconnects
//     with a fresh token before then;
//   - every Options.RecheckEvery (1 s) the Options.Revocation checker (the
//     revocation mirror) is asked again about each live socket; a revoked
//     token, device, account or key disconnects it with token_revoked, and a
//     checker that cannot vouch for the token (a stale mirror failing
//     closed) with unavailable;
//   - at the same re-check the Options.Keys key source (the verifier's,
//     e.g. a remotekeys.KeySet following the issuer) is asked for each
//     socket's signing key, and a key now published as revoked disconnects
//     it with token_revoked, with or without a revocation store.
//
// # Through a revocation store outage
//
// A revocation mirror that has not heard from its store for its
// MaxStaleness (5 s by default) fails closed. By default that disconnects
// every live socket with unavailable at the next re-check, and refuses
// every handshake until the store is back. Options.StaleGrace (opt-in, at
// most MaxStaleGrace) keeps the sockets already connected through an
// outage of up to MaxStaleness + StaleGrace from the mirror's last contact
// with its store; past that they are disconnected with unavailable. New
// handshakes are refused as soon as the mirror is stale, grace or not, and
// a revocation the mirror knew before the outage still disconnects. The
// risk is the one StaleGrace's SECURITY note names: a revocation written
// during the outage reaches those sockets only when the mirror hears from
// its store again, or when the grace ends.
//
// Before it disconnects a socket the server emits EventDisconnect
// ("hallpass:disconnect") with {"reason": "<code>"}, then a namespace
// disconnect, which the client sees as "io server disconnect" and does not
// retry on its own.
//
// # What it trusts, and limits
//
// It trusts the Authenticator (its key set, clock, public URL and replay
// cache) and the revocation checker. The auth payload is client-controlled:
// only its token and proof strings are read, and no token content reaches a
// log line or an error message.
//
// The DPoP proof binds the handshake, not what follows: the socket then
// belongs to the engine.io session, whose id (sid) is a bearer
// credential. Anyone who has it can send events as the device and read
// what it is sent, with no token or key: over HTTP long-polling with the
// sid alone, and over WebSocket too, since the engine.io server lets a
// new WebSocket that names the sid take the session over by "upgrading"
// it, even a WebSocket session with AllowUpgrades off (checked with
// scratch tests against servers/engine v3.0.6: the injected event reached
// the handler, Guard.Claims naming the device). The client puts the sid
// in the query string (?sid=...) of every polling request and of the
// WebSocket upgrade from polling, so an access log of them holds live
// credentials. A client that connects with WebSocket only (transports:
// ["websocket"]) never sends the sid in a URL; otherwise keep query
// strings out of every log.
//
// Each accepted socket costs one expiry timer (no goroutine until it fires);
// one goroutine per Guard runs the re-checks, and Close stops it and every
// timer. A revocation reaches a live socket within the mirror's propagation
// delay plus RecheckEvery.
//
// Attach refuses a server with socket.io's connection state recovery:
// socket.io restores a session (its rooms, and the packets it missed,
// sent to the client at once) when it creates the socket, before any
// middleware runs, so a handshake presenting a session's pid and offset
// with a revoked, expired or forged token read what its rooms received
// while it was away, then got the connect_error; with SkipMiddlewares it
// connected unchecked. The pid is not bound to the device key. A client
// that reconnects gets the messages it missed from the application
// instead. The namespace's own "connection" handler (installed by Attach)
// also disconnects any socket that connected without a live session.
package socketauth
