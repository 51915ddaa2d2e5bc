// Package boltstore is a revocation.Store in an embedded bbolt file, for a
// single hallpass node (hallpass serve without Redis).
//
// Layout, in buckets prefixed "revocation_" so the file can be shared:
// entries (kind:id -> entry JSON), an expiry index (expiry µs + kind:id), and
// events (sequence -> entry JSON) whose bucket sequence is the stream's last
// position. A Cursor is that sequence in decimal.
//
// Each Add is one transaction: drop up to 256 expired entries, keep the
// entry with the later Before, append an event, and trim the events to the
// latest Options.MaxEvents (default 100,000), recording the highest trimmed
// sequence so that Follow from an older cursor returns ErrCursorGone.
//
// Follow wakes at once on an Add made through the same Store and otherwise
// polls every 100 ms. What it trusts: the file (mode 0600) and the local
// clock (Options.Now) for expiry. Entries never contain a token, only ids.
package boltstore
