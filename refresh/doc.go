// Package refresh seals and opens hallpass refresh tokens: PASETO v4.local
// (XChaCha20 + BLAKE2b-MAC, through aidanwoods.dev/go-paseto) under
// issuer-only symmetric keys, footer {"kid":"k4.lid..."}.
//
// What it trusts: only its own keys. A refresh token's payload (device
// session id, counter, iat, exp) is unreadable and unforgeable for clients;
// the single-use rule itself lives in the account store. The same keys seal
// the successor pair kept for the grace window, through a key derived for
// that use alone (XChaCha20-Poly1305, blob.go: the pair never leaves the
// issuer, so it needs no token format, and the AEAD is about 16 times
// cheaper than v4.local), so a store copy holds no usable token and a
// sealed blob can never pass as a refresh token.
//
// Every failure to open is the opaque ErrInvalid; expiry is checked against
// the injected clock on every Open.
//
// Keys change while a Codec is in use: Rekey swaps in a whole new key set
// atomically, which keys/live does when the key ring's store reports a
// rotation (a new sealing key, older keys kept until no token they sealed
// can still be valid) or the end of every session (older keys dropped, so
// no outstanding refresh token opens). This package does no I/O and knows
// no store.
package refresh
