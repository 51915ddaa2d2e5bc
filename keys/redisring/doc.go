// Package redisring keeps a keys.Ring, the refresh-token keys and the
// peppers in Redis, shared by several issuer nodes. Its API mirrors
// keys/filestore (Init, Load, LoadPublic, Update, LoadLocal, RotateLocal,
// ResetLocal, PruneLocal, LoadPeppers, RotatePepper, EnsureSecrets,
// Version, Watch; refresh-token keys are keys.LocalKeyEntry and peppers
// keys.PepperEntry in both), so a server can use either store, and
// keys/live serves the ring and the secrets from either.
//
// # Key layout
//
// All keys share the hash tag {keys}, so every script runs on Redis
// Cluster (P is Options.Prefix, default "hallpass"):
//
//	P:{keys}:ring     string  the signing-key ring (envelope, below)
//	P:{keys}:local    string  the refresh-token keys, current first
//	P:{keys}:pepper   string  the peppers (code digests), current first
//	P:{keys}:head     string  the version of each document, and the counter's
//	P:{keys}:version  string  change counter, INCR'd by every write
//	P:{keys}:events   Pub/Sub channel; each write publishes the new version
//
// A stored value is {"mac":..., "doc":{...}}. doc lists each key with its
// kid, status and times, the public key as PASERK k4.public and the secret
// key as PASERK k4.secret-wrap.pie (refresh keys and peppers as
// k4.local-wrap.pie),
// wrapped under the node's 32-byte wrapping key with a fresh nonce on every
// write. mac is HMAC-SHA256 over the exact doc bytes under a key derived
// from the wrapping key, and doc names its kind (ring, local or pepper), so
// one list can never pass for another. There is
// no plaintext mode: New needs a *keys.WrappingKey, and a stored plaintext
// k4.secret or k4.local is refused on load.
//
// # Writers
//
// Init creates the ring (and the refresh keys and pepper unless present)
// in one Lua script that refuses if a ring exists (SET NX semantics,
// ErrExists). Update and every change of the refresh keys or peppers are
// optimistic: read the documents, the head and the version in one MGET,
// apply the change in memory, then one Lua script stores the result and
// the new head only if the version is unchanged, and increments it. A writer that
// lost the race reads again and reapplies its change, at most
// Options.MaxAttempts times (ErrConflict). Two nodes rotating at once
// therefore both rotate, and neither new key is lost. One counter covers the
// ring, the refresh keys and the peppers, so a reader learns of any change.
//
// RotateLocal keeps the replaced refresh-token keys for keep (the longest
// refresh lifetime) and drops older ones; PruneLocal drops them later
// without a rotation; ResetLocal drops every one (every session ends).
// RotatePepper never drops a pepper: recovery codes made under an older
// one must keep working.
//
// # Seeing other nodes' changes
//
// Every write PUBLISHes the new version on P:{keys}:events. Watch
// subscribes to it and also polls the version every Options.PollInterval
// (default 5 s), because Pub/Sub loses messages sent while a subscriber is
// disconnected: a node learns of a rotation within one round trip
// normally, and within PollInterval after a dropped connection. Changed is
// the cheap one-GET check for callers that prefer their own polling loop.
// Watch runs on the caller's goroutine and stops when its context ends.
//
// # Availability
//
// Every operation is bounded by its context and Options.OpTimeout (default
// 2 s), whichever ends first; any failure to talk to Redis is returned
// wrapping ErrUnavailable. The client must be built with
// ContextTimeoutEnabled; New refuses one that shows it is not.
//
// # What it trusts
//
// The wrapping key, which each node gets from its environment or a file,
// never from Redis. A copy or dump of Redis holds no usable key: secrets
// are wrapped, and without the wrapping key a document can be neither
// opened nor forged. A wrong wrapping key, or any change to a stored
// document, fails with keys.ErrUnwrap; every public key must match its
// kid and every secret its public key.
//
// # Rollback
//
// Whoever can write to Redis without the wrapping key cannot forge a
// document, but can put back an older authentic one (which could bring
// back a key revoked since, or refresh-token keys dropped since), set the
// counter, or delete. Two things refuse that, with ErrRollback:
//
//   - The head (P:{keys}:head, MAC'd like the documents) is written with
//     every document: its version is the counter's new value and it names
//     each document's version. A reader refuses a counter other than the
//     head's version and a document whose version is not the one the head
//     names, or that the head names and is gone. So an older document put
//     back, with or without the counter bumped, is refused even by a node
//     that has seen nothing, as long as the head is there: a ring without
//     a head is taken, by a node that has seen none, for one stored before
//     heads existed, so deleting the head as well gets an older document
//     past such a node (the nodes that saw a head refuse it).
//   - Each node keeps what it has seen (nodeState): the highest counter,
//     the highest version of each document and of the head, the digest of
//     each document at that version, and every kid it has seen revoked. A
//     lower version or counter, another document at the version it has
//     seen (a lost write replaced), a missing document or head it has
//     seen, or a ring in which a kid it has seen revoked is not revoked, is
//     refused, whatever the head says. With
//     Options.StateFile the state is a file on the node (JSON
//     {"mac":..., "state":{"format":1, "prefix", "counter", "docs":{"head",
//     "ring", "local", "pepper"}, "revoked":[kids]}, "seen":{kind:
//     {"version", "sha256"}}, "seen_mac":...}, mode 0600, written
//     atomically on every change, MAC'd under an HKDF key of the wrapping
//     key and bound to the prefix; the digests sit beside the state so that
//     binaries from before them still read the file, and a file without
//     them opens), so a restart keeps it; without, it lives as long as the
//     Store.
//
// Every read is checked, writes included (Update, RotateLocal, ...): a
// writer never builds on a value it refused, so a node that has seen the
// newer ring cannot launder a rollback under a newer version (see Limits
// for a writer that has seen nothing). A refused read changes nothing,
// logs at error level (Options.Logger) and calls Options.OnRollback; keys/live
// keeps serving what it last loaded. Init refuses to replace a ring the
// node or the head has seen (a deleted ring is not silently re-created),
// EnsureSecrets a list that existed; ResetLocal replaces a deleted or
// refused refresh-key list. A read that raced with a newer write by the
// same node is checked against the state from before it, so it is not
// taken for a rollback.
//
// # Limits
//
// Whoever can write to Redis can still delete the ring (denial of
// service: the nodes keep serving what they hold, and refuse to start on
// it). A node that has seen nothing (a new node, or one whose state file
// was removed) cannot tell a complete, consistent old copy (every document,
// the head and the counter, from one backup) from the truth; the other
// nodes refuse it, unless such a node writes on top of it. Its writes
// land at the old counter plus one, two, ...: up to the counter the other
// nodes have seen they are refused (older, or another document at a
// version they saw), but once the stateless writes outnumber the writes
// lost (to a restored backup, a failover to a lagging replica, a restart
// that lost the end of the append-only file), the other nodes accept
// them, and what the lost writes did is undone (a refresh-key list that
// ResetLocal dropped comes back). A ring that brings back a key a node
// has seen revoked is still refused. A Store without Options.StateFile
// starts with nothing seen, so a short-lived writer (a CLI) must not run
// while nodes refuse the ring. A
// ring re-created after Redis lost its data, or restored from a backup on
// purpose, is refused by every node that saw a newer one until its state
// file is removed; what the lost writes did (a revocation, a reset) is
// then undone and must be done again. Protect Redis with ACLs and
// TLS. The wrapping key cannot be rotated in place: re-create the ring.
// Restarting Redis without persistence loses the ring.
package redisring
