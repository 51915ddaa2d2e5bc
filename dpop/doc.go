// Package dpop binds tokens to a device key with DPoP proofs (RFC 9449): it
// verifies proofs ([Verify]), makes them ([NewProof]), issues and checks
// stateless server nonces ([NonceSource]) and remembers used proofs
// ([ReplayCache]: [MemoryReplayCache] here, a Redis one in dpop/redisreplay).
//
// A proof is a JWS signed by the device key, carrying that key's public JWK
// in its header and, in its claims, the request it was made for (htm, htu),
// when (iat), a unique id (jti), the hash of the access token it goes with
// (ath) and the server nonce (nonce). Its JWK SHA-256 thumbprint (RFC 7638),
// [Thumbprint] and Proof.JKT, is what an access token's cnf.jkt holds.
//
// # What it trusts
//
// Verify trusts its arguments except the proof: the Request (method, the URL
// as the server is configured to see itself, the presented access token and
// the thumbprint that token is bound to) and the Options (replay cache, nonce
// checker, clock). Everything in the proof is untrusted until the signature
// verifies under the key the proof itself carries; after that the proof only
// shows that the holder of that key made it for this request within the
// window. Whether that key may act is the caller's decision, made by setting
// Request.JKT to the token's cnf.jkt, or at signup by recording Proof.JKT.
//
// # Threat model
//
// Against a stolen access token: useless without the device key, since
// every request needs a fresh proof whose ath is bound to the token and
// whose key must match cnf.jkt. Against a captured proof: it is valid for
// one method and URL, for MaxAge (60 s) plus MaxFuture (5 s), and only once
// (the replay cache keys on the proof key and jti, atomically). A server
// nonce further stops proofs made in advance. Against malformed input: a
// size limit (8 KiB), a strict compact-JWS alphabet, a strict JSON reader
// that refuses duplicate member names, invalid UTF-8 and deep nesting, an
// algorithm allow-list (ES256, and Ed25519 by its names EdDSA and Ed25519),
// jwk checks (public key of the right type and curve, on the curve, no
// private or symmetric members, no small-order Ed25519 key), no crit. Errors
// are fixed sentinel texts: nothing from the proof is echoed.
//
// Not covered: a compromised device (the key signs whatever malware asks),
// requests replayed within the window to a node whose replay cache is not
// shared (use dpop/redisreplay in a cluster), and the body of the request,
// which a proof does not cover (TLS does).
//
// # JOSE parsing: why not go-jose here
//
// The proof is parsed by this package and the signature checked with
// crypto/ecdsa and crypto/ed25519 directly, not with go-jose (which the
// tests use as an independent implementation to make and cross-check
// proofs). Reasons, measured on the development machine:
//   - go-jose v4.1.9 ParseSignedCompact + Verify + Thumbprint costs 1.5x a
//     raw ecdsa.Verify for ES256 (175 allocations) against a 1.2x target;
//   - it keeps the last of duplicate JSON members and matches member names
//     case-insensitively (encoding/json), and a json.Decoder token walk
//     added around it to catch duplicates costs about 20 µs on its own;
//   - it cannot verify alg "Ed25519" (RFC 9864), which current WebCrypto
//     clients send.
//
// The parse is small and strict: exactly three base64url parts (no
// padding, no white space), one JSON object each for header and claims read
// by the reader in json.go, which accepts a subset of what encoding/json
// accepts (checked by FuzzJSONObject) and nothing ambiguous. FuzzVerify and
// FuzzVerifySigned (which signs fuzzed JSON with a real key to reach the
// claim checks) compare every accepted proof with go-jose and
// encoding/json. Measured beside the raw signature check of the same
// message (BenchmarkVerifyES256 vs BenchmarkRawECDSAVerify and
// BenchmarkRawECDSAVerifyASN1, BenchmarkVerifyEdDSA vs
// BenchmarkRawEd25519Verify, BenchmarkVerifyVsRaw interleaved), Verify
// costs 1.0-1.1x for ES256 and 1.1-1.15x for EdDSA; the parse, JSON, htu
// and thumbprint work is about 3 µs.
//
// # htu comparison
//
// The proof's htu and Request.URL are both normalised (RFC 3986 sections
// 6.2.2 and 6.2.3: case of scheme and host, default port, percent-encoding,
// dot segments; query and fragment dropped; userinfo refused) and compared
// for equality, never by prefix. A trailing slash is significant.
//
// # Errors
//
// Every failure wraps one sentinel error. [ErrorCode] maps it to the RFC 9449
// code: "use_dpop_nonce" for a missing or stale nonce (answer with a fresh
// [NonceHeader]), "invalid_dpop_proof" for any other proof failure, and ""
// for server-side failures ([ErrReplayCheck], [ErrConfig]), which deserve a
// 5xx.
package dpop
