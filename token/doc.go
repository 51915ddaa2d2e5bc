// Package token implements hallpass access tokens: PASETO v4.public
// (Ed25519) signing and verification, the claims, and minting.
//
// # Wire format
//
// An access token is
//
//	v4.public.<base64url(payload || signature)>.<base64url(footer)>
//
// The signature is Ed25519 over PAE("v4.public.", payload, footer, implicit)
// (PASETO version 4, https://github.com/paseto-standard/paseto-spec). The
// payload is a JSON object with the claims iss, aud, sub, dev, cnf.jkt, iat,
// nbf, exp (RFC 3339, UTC) and jti; the footer is exactly
// {"kid":"k4.pid..."}, the PASERK id of the signing key. Minted tokens use
// no implicit assertion.
//
// # Why not go-paseto
//
// aidanwoods.dev/go-paseto is a good library and the tests use it as an
// independent cross-check: tokens minted here parse with it, and tokens it
// signs verify here. The implementation is our own (about 150 lines around
// crypto/ed25519) because:
//
//   - signing must go through crypto.Signer, so that the key can live in a KMS
//     or HSM; go-paseto signs only with its own in-memory key type;
//   - the verifier refuses payloads with duplicate JSON member names, which
//     needs the raw payload bytes, while go-paseto hands back a decoded map;
//   - verification should cost little more than ed25519.Verify itself (target:
//     within 1.2x); go-paseto's parse costs about 1.28x. Here the token is
//     decoded straight into the PAE buffer (one allocation) and the claims
//     are read in one reflection-free pass.
//
// # What it trusts, and the threat model
//
// Everything in a token is attacker-controlled until VerifyV4Public has
// checked its signature with a key the caller trusts. The only part read
// before that is the footer (UnsafeFooter, UnsafeParseFooterKid), bounded to
// MaxFooterSize bytes and a flat object whose one member is a well-formed
// k4.pid; use it to choose among trusted keys, nothing else.
//
// Base64 is decoded strictly (no padding, no line breaks, no stray bits) so a
// token has exactly one spelling. JSON is read by a strict parser: one
// object, no duplicate member names at any depth (compared after unescaping),
// case-sensitive names, valid UTF-8 and surrogate pairs only, bounded depth.
// Those are the places where two JSON parsers commonly disagree about one
// signed document. Unknown claims are validated the same way and ignored, so
// the issuer can add claims before every verifier knows them.
//
// Error messages are fixed text: they never contain token content, claim
// values or key material.
//
// # Limits
//
// This package checks no clock, issuer, audience, revocation or device
// binding; the verifier package does, in the order docs/protocol.md fixes. Mint
// trusts its crypto.Signer to return a valid signature (Ed25519 signatures
// are deterministic; a faulty signer yields tokens that fail verification,
// not forgeable ones). Tokens are bearer credentials bound to a device key
// through cnf.jkt; the binding is only as strong as the DPoP check that
// enforces it.
package token
