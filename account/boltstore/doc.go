// Package boltstore is the embedded account.Store: one bbolt file, the
// issuer's default when no Redis is configured.
//
// Layout: buckets "accounts" (account id -> JSON account, its recovery
// salt and code digests included), "usernames" (mapped username key ->
// account id), "devices" (device id -> JSON device), "account_devices"
// (account id + device id -> empty, for ListDevices) and "sessions"
// (device id -> JSON session); for the lifecycle "username_holds" (hex
// SHA-256 of a username key left by a rename or deletion -> the end of its
// hold, so a held name is not kept in clear), "link_codes" (code digest ->
// account, created, expires) and "account_link_codes" (account id +
// digest -> empty). Every Store method is one bbolt transaction (Update or
// View), so the username claim and the account creation, each refresh
// decision, each redemption of a link or recovery code, a rename and a
// deletion are atomic: bbolt serialises writers.
//
// Expired holds are dropped when their name is claimed again and in
// batches whenever a name is released; expired link codes when their
// account creates another code or is deleted.
//
// Durability: the file is opened 0600 with NoSync false, so a committed
// transaction has been fsynced. The file is locked (flock) while open; a
// second process opening it waits at most Options.LockTimeout and fails.
//
// What it trusts: the file and its directory (whoever can write them can
// change any account); the caller's records only after validation (ids must
// pass account.ValidID before they become keys). The stored Successor is
// sealed by the issuer and codes are stored as the issuer's keyed digests,
// so a copy of the file holds no usable token or code.
//
// Limits: one process at a time; writes are serialised, so throughput is
// bounded by fsync latency (one fsync per state change). Context
// cancellation is checked before a transaction starts; a started
// transaction runs to its end.
package boltstore
