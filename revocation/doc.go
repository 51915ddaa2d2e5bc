// Package revocation is hallpass's denylist: entries that revoke one token
// (jti), one device's or one account's tokens issued before a time, every
// token issued before a time (the global epoch), or every token of a signing
// key; a Store interface for where they live; and a Mirror that verifiers
// keep in memory.
//
// # Model
//
// An issuer or admin API calls Store.Add. The store keeps the live entries
// and appends an event to a bounded stream. Each verifier runs a Mirror: it
// loads Store.Snapshot, then follows the stream from the snapshot's cursor
// (revocation/redisstore: XREAD BLOCK, so a new entry reaches every mirror in
// about one network round trip). After a disconnect it resumes from its
// cursor; if the stream was trimmed past it (ErrCursorGone) it reloads the
// snapshot. The mirror implements verifier.RevocationChecker: one lookup in
// a few maps per request, whose cost does not grow with the number of
// entries.
//
// # Lifetime of entries
//
// A token, device or account entry lives EntryTTL = max access lifetime +
// leeway after its Before: after that, every token it could deny has expired
// anyway, so stores and mirrors drop it and the set stays as small as the
// revocations of the last few minutes. Key entries and the global epoch never
// expire (only the latest epoch is kept).
//
// # Staleness
//
// A mirror that has not heard from its store (a successful Follow, even an
// empty one) for longer than MirrorOptions.MaxStaleness refuses every token
// with ErrStale (fail closed), unless FailOpen was chosen; Ready reports it
// for /readyz. The age is read on MirrorOptions.Now, a wall clock: one
// stepped forward makes the mirror stale early (until its next poll), one
// stepped back before the last time it heard from the store makes it stale
// too, until it hears from the store again, never fresh for the length of
// the step.
//
// # Trust and limits
//
// The package trusts its Store: an attacker who can write to it can revoke
// anything (denial of service) but cannot make a revoked token pass a fresh
// mirror, since entries only ever add denials. The denial that lasts is
// forged key and all entries (they never expire: an all entry dated a
// century ahead refuses every token for good), so Authenticated wraps a
// Store whose key and all entries carry a MAC under a key derived from the
// issuers' wrapping key (EntryAuthenticator): Add seals them, Snapshot and
// Follow drop any without a valid MAC. Deleting entries cannot be
// prevented; a Mirror keeps every entry it has seen when a later snapshot
// lacks it (Redis lost its data, a failover to a replica that had not
// received it, a deletion): token, device and account entries until
// their own expiry, key entries and the highest all epoch until the
// process ends (a revoked signing key also stays revoked in the key set,
// keys/redisring). A mirror started after the loss does not have them.
// Comparisons use iat: tokens are minted with whole-second iat, so a token minted in the same second
// after a device or account revocation is denied too (a harmless
// over-denial; the alternative would let one through). Errors name the kind
// of entry that matched, never a claim value.
//
// This package imports neither Redis, bbolt nor Echo: a verifier that only
// uses a Mirror over some Store does not pull them in.
package revocation
