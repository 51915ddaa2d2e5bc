// Package boltstore is the embedded account.Store: one bbolt file, the
// issuer's default when no Redis is configured.
//
// Layout: buckets "accounts" (account id -> account record, its recovery
// salt and code digests included), "usernames" (mapped username key ->
// account id), "devices" (device id -> device record), "account_devices"
// (account id + device id -> empty, for ListDevices) and "sessions"
// (device id -> session record); for the lifecycle "username_holds" (hex
// SHA-256 of a username key left by a rename or deletion -> the end of its
// hold, JSON, so a held name is not kept in clear), "link_codes" (code
// digest -> account, the device that made it, created, expires, and once
// redeemed the device that redeemed it and until when a lost answer may be
// retried (the code's old expiry; its expires becomes the redemption time,
// so a version before redeemed_by reads it as an expired code); JSON; no
// maker in records written before it was recorded) and "account_link_codes"
// (account id + digest -> empty), "session_retry" (below). Account, device and session records are
// a compact binary format led by a format byte (records.go); JSON records
// written by earlier versions still read and are rewritten on their next
// change, as do format 2 sessions (written by the first versions with
// retry digests); the reverse does not hold: a version before format 1
// reports those records as corrupt, so going back to it after running
// this one needs a copy of the file taken before the upgrade. A session's
// retry digest is in "session_retry" (device id -> the session counter it
// was stored at, then the digest), not in the session record, so that a
// version before retry ids still reads every session; a digest whose
// session such a version advanced since is stale by its counter and
// ignored (docs/deploy.md, Upgrading and rolling back).
//
// Every Store method is one atomic step: the username claim and the
// account creation, each refresh decision, each redemption of a link or
// recovery code, a rename and a deletion. Reads are bbolt read
// transactions. Writes are group-committed (internal/boltcommit): one goroutine,
// owned by the Store and stopped by Close, runs the writes that queued up
// while the previous commit was flushed in one transaction (at most
// Options.MaxBatch, no added delay), applying them one after the other as
// bbolt would have serialised them, and answers each caller only after
// that transaction is committed. An operation that is refused (name taken,
// code used, deadline passed) changes nothing and fails alone; one that
// fails after writing, or panics, makes the batch roll back and run again
// without it.
//
// Expired holds are dropped when their name is claimed again, and
// whenever a name is released from among the next few hundred holds (in
// key order from the released name's, wrapping around): a release reads a
// bounded number of holds however many are live. Expired link codes go
// when their account creates another code or is deleted.
//
// Durability: the file is opened 0600 with NoSync false, so a committed
// transaction has been fsynced, and no write is acknowledged before the
// transaction that carries it is committed (a kill -9 test checks that
// every acknowledged signup survives). If a commit fails, every operation
// of its batch gets ErrUnavailable, refusals included. The file is locked (flock) while open; a
// second process opening it waits at most Options.LockTimeout and fails.
//
// What it trusts: the file and its directory (whoever can write them can
// change any account); the caller's records only after validation (ids must
// pass account.ValidID before they become keys). The stored Successor is
// sealed by the issuer and codes are stored as the issuer's keyed digests,
// so a copy of the file holds no usable token or code.
//
// Limits: one process at a time; writes are serialised through one
// committer, so throughput is bounded by the CPU of applying them and by
// fsync latency divided by the batch size (one commit, two fdatasyncs, per
// batch). A caller's context is checked before its write is queued, again
// when its turn comes inside the transaction (a caller that gave up changes
// nothing), and while it waits in the queue (it returns at its deadline and
// its write is skipped); once started, a write waits for its commit.
package boltstore
